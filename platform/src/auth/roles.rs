//! Extractors for the roles a route admits. Each answers 403 to any other credential (401
//! to none) from the request head, before the handler runs and before its body is read:
//! a credential of the wrong kind cannot hold a request open by sending a body slowly.
use super::{Authenticator, Principal};
use crate::problem::Problem;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use schemas::ShopId;

/// An authenticated admin: a handler that takes this answers 403 to anyone else before
/// it runs, so no admin route can forget the check.
#[derive(Clone, Copy, Debug)]
pub struct Admin;

/// An authenticated shop (purchases and refunds are sent by shops only).
#[derive(Clone, Copy, Debug)]
pub struct Shop(pub ShopId);

/// Who may sign users up: a shop (its users) or an admin (users of no shop).
#[derive(Clone, Copy, Debug)]
pub struct Signer(pub Principal);

/// The extractor of a role: the principals `$admitted` matches, as `$role`; 403 to others.
macro_rules! role {
    ($role:ty, $admitted:pat => $value:expr) => {
        impl<S> FromRequestParts<S> for $role
        where
            Authenticator: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = Problem;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                match Principal::from_request_parts(parts, state).await? {
                    $admitted => Ok($value),
                    _ => Err(Problem::forbidden()),
                }
            }
        }
    };
}

role!(Admin, Principal::Admin => Admin);
role!(Shop, Principal::Shop(shop) => Shop(shop));
role!(Signer, who @ (Principal::Shop(_) | Principal::Admin) => Signer(who));
