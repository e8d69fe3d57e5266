//! The OpenAPI 3.1 document and the interactive docs, served from the binary.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use railyard_server::testing::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_describes_the_api() {
    let app = TestApp::new().await;
    let res = app.get("/api/openapi.json").await;
    assert_eq!(res.status, 200);
    let doc = res.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Railyard API");
    let health = &doc["paths"]["/api/v1/health"]["get"];
    assert_eq!(health["operationId"], "find_health");
    for status in ["200", "503"] {
        let schema = &health["responses"][status]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/HealthResponse", "{status}");
    }
    for schema in ["HealthResponse", "ErrorBody", "ErrorCode"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} is described"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interactive_docs_are_served_from_the_binary() {
    let app = TestApp::new().await;
    let res = app.get("/api/docs/").await;
    assert_eq!(res.status, 200);
    let html = res.text();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no CDN: {html}");

    let res = app.get("/api/docs/swagger-ui-bundle.js").await;
    assert_eq!(res.status, 200);
    assert!(res.body.len() > 100_000, "the bundle itself is embedded");

    let res = app.get("/api/docs/swagger-initializer.js").await;
    assert!(res.text().contains("/api/openapi.json"), "{}", res.text());
}
