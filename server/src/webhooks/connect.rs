//! Connecting a repository: the first service of a repository records who connected it
//! (whose token clones it privately and reports statuses) and, unless the instance has a
//! GitHub App secret for every repository, creates its webhook with a secret of its own,
//! kept sealed.

use uuid::Uuid;

use crate::{
    app::App,
    auth::secret,
    github::RestError,
    models::github::{Connections, Repositories},
};

/// Connects `repository` for `user`; `Some(note)` says what could not be done (the service
/// is made all the same: it deploys by hand until a webhook exists).
pub async fn connect(app: &App, user: Uuid, repository: &str) -> anyhow::Result<Option<String>> {
    let mut conn = app.db.get().await?;
    let needs_hook = Repositories::ensure(&mut conn, repository, user).await?;
    if !needs_hook || app.config.github.webhook_secret.is_some() {
        return Ok(None);
    }
    let Some(token) = Connections::token(&mut conn, &app.keys, user).await? else {
        return Ok(Some(
            "connect GitHub (Account → GitHub) so Railyard can add a webhook: pushes do not deploy until then".to_owned(),
        ));
    };
    let hook_secret = secret::random_token()?;
    let url = format!("{}/api/v1/github/webhook", app.config.http.public_url);
    match app
        .github_rest
        .create_hook(&token, repository, &url, &hook_secret)
        .await
    {
        Ok(hook_id) => {
            Repositories::set_hook(&mut conn, &app.keys, repository, (hook_id, &hook_secret), user).await?;
            Ok(None)
        }
        Err(RestError::BadToken) => {
            Connections::mark_broken(&mut conn, user, "GitHub refused the token").await?;
            Ok(Some(
                "GitHub refused your token: reconnect GitHub, then pushes deploy".to_owned(),
            ))
        }
        Err(err) => {
            tracing::warn!(error = %err, repository, "creating the webhook failed");
            Ok(Some(format!(
                "the webhook could not be created ({err}): pushes do not deploy until it exists"
            )))
        }
    }
}
