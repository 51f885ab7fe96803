//! Money arithmetic that cannot panic, and the bounds on amounts the provider reports.
//!
//! `rust_decimal`'s `*`, `+`, `-` and `/` panic on overflow (and `/` on zero). Every money
//! path of this module uses the checked forms instead and turns an overflow into an answer
//! (a rejected callback, a 409 `amount_out_of_range`), so no number a provider or client sends
//! can stop a task that others depend on.
//!
//! **The bound on reported amounts.** A payment callback's `balance_crypto` and
//! `balance_fiat` must each be a decimal number (a JSON string or number), not negative, and
//! at most [`MAX_REPORTED_FACTOR`] times what the invoice asked for (`cryptoAmount`, resp. the
//! fiat `amount`). Real overpayments are a few percent; ten times the invoice is a typo, a
//! bug or an attack, and paying it out would move money nobody received. Such a callback is
//! recorded with outcome `rejected` and changes no money.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

/// A reported balance may be at most this many times the invoiced amount.
pub const MAX_REPORTED_FACTOR: i64 = 10;

/// `a × b`, or `None` on overflow.
pub fn mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    a.checked_mul(b)
}

/// `a − b`, or `None` on overflow.
pub fn sub(a: Decimal, b: Decimal) -> Option<Decimal> {
    a.checked_sub(b)
}

/// `a ÷ b`, or `None` on overflow or when `b` is zero.
pub fn div(a: Decimal, b: Decimal) -> Option<Decimal> {
    a.checked_div(b)
}

/// `amount` less `percent` percent, rounded down (toward zero) to `scale` places; `None` on
/// overflow.
pub fn less_percent(amount: Decimal, percent: Decimal, scale: u32) -> Option<Decimal> {
    let kept = sub(Decimal::ONE_HUNDRED, percent)?;
    let net = div(mul(amount, kept)?, Decimal::ONE_HUNDRED)?;
    Some(net.round_dp_with_strategy(scale, RoundingStrategy::ToZero))
}

/// The largest balance a callback may report for an invoice of `invoiced`.
pub fn reported_bound(invoiced: Decimal) -> Decimal {
    mul(
        invoiced.max(Decimal::ZERO),
        Decimal::from(MAX_REPORTED_FACTOR),
    )
    .unwrap_or(Decimal::MAX)
}

/// Checks an amount the provider reported in `field` against the invoiced amount.
///
/// `Ok(None)` when absent (missing, `null` or an empty string: the callback carries no such
/// figure); `Ok(Some(d))` when it is a decimal in `0 ..= invoiced × MAX_REPORTED_FACTOR`;
/// `Err(why)` otherwise — unparsable (including numbers beyond `Decimal`'s range), negative,
/// or beyond the bound. `why` is kept for admins on the rejected callback.
pub fn check_reported(
    field: &str,
    raw: Option<&Value>,
    invoiced: Decimal,
) -> Result<Option<Decimal>, String> {
    let text = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(format!("{field} is not a number")),
    };
    let value: Decimal = text
        .parse()
        .map_err(|_| format!("{field} is not a decimal number in range: {text:.40}"))?;
    if value < Decimal::ZERO {
        return Err(format!("{field} is negative: {value}"));
    }
    let bound = reported_bound(invoiced);
    if value > bound {
        return Err(format!(
            "{field} {value} is more than {MAX_REPORTED_FACTOR}x the invoiced {invoiced}"
        ));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn overflow_is_none_never_a_panic() {
        assert_eq!(mul(Decimal::MAX, d("2")), None);
        assert_eq!(sub(Decimal::MIN, d("1")), None);
        assert_eq!(div(d("1"), Decimal::ZERO), None);
        assert_eq!(less_percent(Decimal::MAX, d("10"), 8), None);
        assert_eq!(less_percent(d("0.002"), d("10"), 8), Some(d("0.0018")));
        assert_eq!(reported_bound(Decimal::MAX), Decimal::MAX);
    }

    #[test]
    fn reported_amounts_are_bounded_by_the_invoice() {
        let inv = d("0.002");
        assert_eq!(check_reported("b", None, inv), Ok(None));
        assert_eq!(check_reported("b", Some(&json!(null)), inv), Ok(None));
        assert_eq!(check_reported("b", Some(&json!("")), inv), Ok(None));
        assert_eq!(
            check_reported("b", Some(&json!("0.0021")), inv),
            Ok(Some(d("0.0021")))
        );
        assert_eq!(
            check_reported("b", Some(&json!(0.02)), inv),
            Ok(Some(d("0.02")))
        );
        assert!(check_reported("b", Some(&json!("0.0201")), inv).is_err());
        assert!(check_reported("b", Some(&json!("-0.001")), inv).is_err());
        assert!(check_reported("b", Some(&json!("lots")), inv).is_err());
        assert!(check_reported("b", Some(&json!(true)), inv).is_err());
        let huge = "7".repeat(60);
        assert!(check_reported("b", Some(&json!(huge)), inv).is_err());
        assert!(check_reported("b", Some(&json!("79228162514264337593543950335")), inv).is_err());
    }
}
