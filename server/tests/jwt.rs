//! The access-token attack corpus: every forged or misused token is refused with 401.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use railyard_server::{
    auth::jwt::AccessClaims,
    schema::signing_keys,
    testing::{Client, TestApp},
};
use serde_json::json;

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// GET /api/v1/me with `token` as the access cookie.
async fn me_with(app: &TestApp, token: &str) -> u16 {
    let mut client = Client::new(app);
    client.cookies.insert("railyard_access".into(), token.to_owned());
    let res = client.get("/api/v1/me").await;
    if res.status != 200 {
        assert_eq!(res.json()["error"]["code"], "unauthorized", "{}", res.text());
    }
    res.status
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_misused_tokens_are_refused() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let good = admin.cookies["railyard_access"].clone();
    assert_eq!(
        me_with(&app, &good).await,
        200,
        "the genuine token works, so the refusals below mean something"
    );

    let signer = &app.state.signer;
    let genuine: AccessClaims = signer.verify(&good).unwrap();
    let now = Utc::now().timestamp();
    let with = |edit: &dyn Fn(&mut AccessClaims)| {
        let mut claims = genuine.clone();
        edit(&mut claims);
        signer.sign_raw(&claims).unwrap()
    };
    let (header_b64, payload_b64, signature) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&header_b64).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let mut conn = app.state.db.get().await.unwrap();
    let public_key: Vec<u8> = signing_keys::table
        .filter(signing_keys::kid.eq(&kid))
        .select(signing_keys::public_key)
        .first(&mut conn)
        .await
        .unwrap();
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload_b64).unwrap()).unwrap();

    let mut corpus: Vec<(&str, String)> = Vec::new();
    corpus.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
            payload_b64
        ),
    ));
    corpus.push((
        "alg none, no kid",
        format!("{}.{}.", b64(&json!({"alg": "none"})), payload_b64),
    ));
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    corpus.push((
        "HS256 keyed with the public key",
        jsonwebtoken::encode(&hs, &payload, &EncodingKey::from_secret(&public_key)).unwrap(),
    ));
    corpus.push((
        "HS256 keyed with the base64url public key",
        jsonwebtoken::encode(
            &hs,
            &payload,
            &EncodingKey::from_secret(URL_SAFE_NO_PAD.encode(&public_key).as_bytes()),
        )
        .unwrap(),
    ));
    corpus.push((
        "unknown kid",
        format!(
            "{}.{payload_b64}.{signature}",
            b64(&json!({"alg": "EdDSA", "typ": "JWT", "kid": "not-a-key"}))
        ),
    ));
    corpus.push((
        "no kid",
        format!(
            "{}.{payload_b64}.{signature}",
            b64(&json!({"alg": "EdDSA", "typ": "JWT"}))
        ),
    ));
    corpus.push((
        "expired",
        with(&|c| {
            c.iat = now - 3600;
            c.nbf = now - 3600;
            c.exp = now - 1800;
        }),
    ));
    corpus.push(("not valid yet", with(&|c| c.nbf = now + 3600)));
    corpus.push(("wrong audience", with(&|c| c.aud = "someone-else".into())));
    corpus.push((
        "wrong issuer",
        with(&|c| c.iss = "https://evil.example.com".into()),
    ));
    corpus.push(("not an access token", with(&|c| c.typ = "refresh".into())));
    corpus.push((
        "refresh token as access token",
        admin.cookies["railyard_session"].clone(),
    ));
    let mut tampered = payload.clone();
    tampered["sub"] = json!(uuid::Uuid::new_v4());
    corpus.push((
        "tampered payload",
        format!("{header_b64}.{}.{signature}", b64(&tampered)),
    ));
    let mut flipped = URL_SAFE_NO_PAD.decode(&signature).unwrap();
    flipped[0] ^= 1;
    corpus.push((
        "flipped signature bit",
        format!("{header_b64}.{payload_b64}.{}", URL_SAFE_NO_PAD.encode(flipped)),
    ));
    corpus.push(("signature stripped", format!("{header_b64}.{payload_b64}.")));
    corpus.push(("garbage", "not.a.jwt".to_owned()));
    corpus.push(("empty", String::new()));

    for (name, token) in &corpus {
        assert_eq!(me_with(&app, token).await, 401, "{name} must be refused");
    }
    // A genuine token whose claims were all present and valid still works afterwards.
    assert_eq!(me_with(&app, &with(&|c| c.jti = uuid::Uuid::new_v4())).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn jwks_publishes_the_verifying_key() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.status, 200);
    let keys = res.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert!(key.get("d").is_none(), "no private part");

    // The published key verifies the cookie's token.
    let token = &admin.cookies["railyard_access"];
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["railyard"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation).unwrap();
    assert_eq!(data.header.kid.as_deref(), key["kid"].as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_keys_rotate_and_old_tokens_verify_for_a_while() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let old_token = admin.cookies["railyard_access"].clone();

    // Age the key past its rotation period, then rotate as a restart would.
    let mut conn = app.state.db.get().await.unwrap();
    diesel::update(signing_keys::table)
        .set(signing_keys::created_at.eq(Utc::now() - chrono::Duration::days(31)))
        .execute(&mut conn)
        .await
        .unwrap();
    app.state
        .signer
        .rotate_and_load(&mut conn, &app.state.keys)
        .await
        .unwrap();
    assert_eq!(app.state.signer.retired_count(), 1);
    assert_eq!(
        app.get("/.well-known/jwks.json").await.json()["keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        me_with(&app, &old_token).await,
        200,
        "tokens of the retired key still verify"
    );

    // Private keys are stored sealed, never in plain PKCS#8.
    let sealed: Vec<Vec<u8>> = signing_keys::table
        .select(signing_keys::private_key)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(sealed.len(), 2);
    for key in sealed {
        assert!(
            ring::signature::Ed25519KeyPair::from_pkcs8(&key).is_err(),
            "stored as plain PKCS#8"
        );
        assert_eq!(&key[..4], &1u32.to_be_bytes(), "sealed under key version 1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_learns_a_key_another_replica_rotated_in() {
    let app = TestApp::new().await;
    let replica = TestApp::replica_of(&app).await;
    app.admin().await;
    let mut conn = app.state.db.get().await.unwrap();
    diesel::update(signing_keys::table)
        .set(signing_keys::created_at.eq(Utc::now() - chrono::Duration::days(31)))
        .execute(&mut conn)
        .await
        .unwrap();
    app.state
        .signer
        .rotate_and_load(&mut conn, &app.state.keys)
        .await
        .unwrap();
    // A token signed with the new key, which the replica has never loaded.
    let mut client = Client::new(&app);
    let res = client
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(me_with(&replica, &client.cookies["railyard_access"]).await, 200);
}
