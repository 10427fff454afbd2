//! Typed HTTP clients for the master and volume APIs (the only way roles reach each other).

/// Placeholder so the module exists; the clients arrive with the roles that need them.
#[derive(Debug, Clone, Default)]
pub struct HttpClient {}
