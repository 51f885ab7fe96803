//! The frontend's kit: the generated TypeScript module compiles in a strict TypeScript
//! frontend (and refuses its misuses), the served `/api/types.ts` is the command's text, and
//! the AsyncAPI document passes the official parser.

use std::collections::BTreeSet;
use std::path::Path;

use marketplace_api::Config;
use marketplace_tests::TestApp;
use marketplace_tests::js::{ensure_packages, js_dir, run};

const TS_MARKER: &str = "// @ts-expect-error";

async fn served_types(app: &TestApp) -> (String, String) {
    let res = app
        .http
        .get(app.url("/api/types.ts"))
        .send()
        .await
        .expect("GET /api/types.ts");
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (content_type, res.text().await.expect("body"))
}

/// Runs tsc (strict, no emit) on `frontend` with the module `marketplace-api-types` mapped to
/// `types`; returns (success, output).
async fn tsc(dir: &Path, frontend: &Path, types: &Path) -> (bool, String) {
    let config = serde_json::json!({
        "compilerOptions": {
            "strict": true, "noEmit": true, "target": "es2022", "module": "esnext",
            "moduleResolution": "bundler", "lib": ["es2022", "dom"], "skipLibCheck": true,
            "types": [],
            "paths": { "marketplace-api-types": [types] },
        },
        "files": [frontend],
    });
    let path = dir.join("tsconfig.json");
    std::fs::write(&path, config.to_string()).expect("write tsconfig");
    let tsc = js_dir().join("node_modules/typescript/bin/tsc");
    let out = run(
        "node",
        &[
            tsc.to_str().expect("utf-8 path"),
            "-p",
            path.to_str().expect("utf-8 path"),
        ],
        &[],
    )
    .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn a_strict_typescript_frontend_compiles_against_the_served_types_and_its_misuses_do_not() {
    ensure_packages(&["typescript", "socket.io-client"]).await;
    let app = TestApp::spawn().await;
    let (_, module) = served_types(&app).await;
    // A scratch directory inside tests/js, so `socket.io-client` resolves from its node_modules.
    let dir = js_dir()
        .join("types")
        .join(format!(".check-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let types = dir.join("api.ts");
    std::fs::write(&types, &module).expect("write the module");

    let frontend = js_dir().join("types").join("frontend.ts");
    let (ok, out) = tsc(&dir, &frontend, &types).await;

    // The same frontend with its `@ts-expect-error` markers removed: every marked line must
    // be an error, and nothing else.
    let source = std::fs::read_to_string(&frontend).expect("frontend.ts");
    let mut expected = BTreeSet::new();
    let mut loose = Vec::new();
    let mut marked = false;
    for line in source.lines() {
        if line.trim_start().starts_with(TS_MARKER) {
            marked = true;
            continue;
        }
        loose.push(line);
        if marked {
            expected.insert(loose.len());
            marked = false;
        }
    }
    let loose_path = js_dir()
        .join("types")
        .join(format!("loose-{}.ts", uuid::Uuid::now_v7()));
    std::fs::write(&loose_path, loose.join("\n")).expect("write loose copy");
    let (loose_ok, loose_out) = tsc(&dir, &loose_path, &types).await;
    let _ = std::fs::remove_file(&loose_path);
    let _ = std::fs::remove_dir_all(&dir);

    assert!(ok, "tsc --strict failed on the frontend:\n{out}");
    assert!(!loose_ok, "the misuses compiled:\n{loose_out}");
    let file = loose_path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("name")
        .to_owned();
    let errors: BTreeSet<usize> = loose_out
        .lines()
        .filter_map(|l| l.split_once(&format!("{file}(")))
        .filter_map(|(_, rest)| rest.split(',').next()?.parse().ok())
        .collect();
    assert!(
        expected.len() >= 10,
        "too few misuses checked: {expected:?}"
    );
    assert_eq!(errors, expected, "tsc output:\n{loose_out}");
}

#[tokio::test]
async fn the_served_types_are_the_text_of_marketplace_typescript() {
    let app = TestApp::spawn().await;
    let (content_type, served) = served_types(&app).await;
    assert!(
        content_type.starts_with("application/typescript"),
        "{content_type}"
    );
    // `marketplace typescript` prints exactly this function's text for the configuration.
    let env = app.env.clone();
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
    let openapi = marketplace_api::openapi_document(&config)
        .await
        .expect("openapi");
    let printed = marketplace_api::typescript_module(&openapi);
    assert_eq!(served, printed);
    for name in [
        "export interface User ",
        "export interface PurchaseRequest ",
        "export interface SellerOffer ",
        "export interface OfferMessage ",
        "export interface Chat ",
        "export interface Message ",
        "export interface Notification ",
        "export interface Payment ",
        "export interface Payout ",
        "export interface Dispute ",
        "export interface Evidence ",
        "export interface Money ",
        "export interface Problem ",
        "export interface EventMeta ",
        "export interface ServerToClientEvents ",
        "export interface ClientToServerEvents ",
        "export interface Review ",
        "export interface Rating ",
        "export type RequestStatus = \"open\" | \"accepted\" | \"paid\" | \"delivered\" | \"completed\" | \"cancelled\" | \"disputed\" | \"refunded\";",
        "export type Role = \"buyer\" | \"seller\" | \"admin\";",
        "\"offer:accepted\": (payload: OfferAccepted, meta: EventMeta) => void;",
        "\"review:published\": (payload: ReviewPublished, meta: EventMeta) => void;",
        "\"chat:typing\": (payload: ChatTyping) => void;",
    ] {
        assert!(served.contains(name), "missing `{name}`");
    }
    // Deterministic: a second document gives the same text.
    let again = marketplace_api::openapi_document(&config)
        .await
        .expect("openapi");
    assert_eq!(marketplace_api::typescript_module(&again), printed);
}

#[tokio::test]
async fn the_asyncapi_document_passes_the_official_parser() {
    ensure_packages(&["@asyncapi/parser"]).await;
    let app = TestApp::spawn().await;
    let doc = app.get("/api/asyncapi.json", None).await.expect(200);
    let path = std::env::temp_dir().join(format!("asyncapi-{}.json", uuid::Uuid::now_v7()));
    std::fs::write(&path, doc.to_string()).expect("write the document");
    let out = run(
        "node",
        &[
            "tools/validate-asyncapi.mjs",
            path.to_str().expect("utf-8 path"),
        ],
        &[],
    )
    .await;
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "@asyncapi/parser refused the document:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("VALID: AsyncAPI"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("error ")), "{text}");
}
