//! Column types for what modules store as text: contract enums (statuses, roles, kinds) and
//! decimal amounts. Reading them fails loudly: a stored word or number that cannot be read
//! makes the query fail (the request answers a generic 500 and the cause is logged), never a
//! silent default such as `0` or `open`. Writing them writes exactly the text that was
//! stored before these types existed, so no data migration was needed.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use sea_orm::DeriveValueType;

/// A decimal kept in a text column, written as [`Decimal`]'s `Display` writes it (`125.50`,
/// scale kept). A value that does not parse as a decimal fails the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, DeriveValueType)]
#[sea_orm(value_type = "String")]
pub struct DecimalText(pub Decimal);

impl FromStr for DecimalText {
    type Err = rust_decimal::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::from_str(s).map(Self)
    }
}

impl fmt::Display for DecimalText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Decimal> for DecimalText {
    fn from(d: Decimal) -> Self {
        Self(d)
    }
}

impl From<DecimalText> for Decimal {
    fn from(d: DecimalText) -> Self {
        d.0
    }
}

/// Declares the stored form of a contract enum: a sea-orm `DeriveActiveEnum` over a text
/// column with one word per variant, `as_str`, `Display`, and conversions both ways with the
/// contract enum (whose variants must have the same names). A row holding any other word fails
/// to load (`DbErr::Type`), so a corrupted status is an error, never a guess.
///
/// ```ignore
/// kernel::stored_enum! {
///     /// `RequestStatus` as stored in `purchase_requests.status`.
///     pub enum Status for RequestStatus {
///         Open = "open",
///         Accepted = "accepted",
///     }
/// }
/// ```
#[macro_export]
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident for $contract:ident {
            $($variant:ident = $word:tt),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)")]
        $vis enum $name {
            $(
                #[sea_orm(string_value = $word)]
                $variant,
            )+
        }

        impl $name {
            /// The word stored for this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::From<$name> for $contract {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => $contract::$variant,)+
                }
            }
        }

        impl ::std::convert::From<$contract> for $name {
            fn from(v: $contract) -> Self {
                match v {
                    $($contract::$variant => $name::$variant,)+
                }
            }
        }
    };
}
