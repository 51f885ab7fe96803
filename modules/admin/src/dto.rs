//! Request and response bodies of the admin endpoints that are not contract types.
