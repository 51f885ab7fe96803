//! The work behind the admin endpoints.

use kernel::{ApiError, AuthUser, Role};

/// 403 unless the caller is an admin: every endpoint of this module starts with it.
pub fn require_admin(caller: &AuthUser) -> Result<(), ApiError> {
    caller.require(&[Role::Admin])
}
