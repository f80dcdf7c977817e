//! What the benches share.

use std::sync::Arc;

/// A state over `store` that authenticates as vigild does, and the API key (of the first
/// admin) its requests carry.
pub async fn authenticated(store: Arc<dyn vigil_core::Store>) -> (vigil_http::AppState, String) {
    let auth = vigil_http::auth::Auth::load(store.clone())
        .await
        .expect("accounts");
    auth.ensure_admin(Some("bench-password"))
        .await
        .expect("admin");
    let admin = auth.accounts()[0].id.clone();
    let (_, key) = auth.create_key(&admin, "bench", None).await.expect("key");
    (vigil_http::AppState::new(store).with_auth(auth), key)
}
