//! What comes in and goes out of the offers routes.

use catalog::contract::{Money, MoneyInput};
use kernel::Result;
use kernel::validate::Fields;
use serde::Deserialize;
use utoipa::ToSchema;

/// `POST /api/requests/{id}/offers`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOfferBody {
    pub price: MoneyInput,
    /// 1 to 2000 characters (trimmed).
    #[schema(min_length = 1, max_length = 2000)]
    pub message: String,
}

/// A checked new offer.
#[derive(Debug, Clone)]
pub struct NewOffer {
    pub price: Money,
    pub message: String,
}

impl NewOffer {
    pub fn parse(body: CreateOfferBody) -> Result<NewOffer> {
        let mut f = Fields::new();
        let price = f.absorb(Money::parse("price", &body.price));
        let message = f.text("message", &body.message, 1, 2000);
        f.finish()?;
        match price {
            Some(price) => Ok(NewOffer { price, message }),
            None => Err(kernel::ApiError::invalid("price", "is required")),
        }
    }
}

/// `POST /api/offers/{id}/counter`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CounterBody {
    /// 1 to 2000 characters (trimmed).
    #[schema(min_length = 1, max_length = 2000)]
    pub message: String,
    /// When given, it becomes the offer's price.
    #[serde(default)]
    pub price: Option<MoneyInput>,
}

/// A checked counter message.
#[derive(Debug, Clone)]
pub struct NewCounter {
    pub message: String,
    pub price: Option<Money>,
}

impl NewCounter {
    pub fn parse(body: CounterBody) -> Result<NewCounter> {
        let mut f = Fields::new();
        let message = f.text("message", &body.message, 1, 2000);
        let price = match &body.price {
            Some(p) => f.absorb(Money::parse("price", p)),
            None => None,
        };
        f.finish()?;
        Ok(NewCounter { message, price })
    }
}
