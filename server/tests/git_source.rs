//! Fetching git sources with the real git, from local repositories made by the test.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

/// Where `file://` sources may come from here: where the tests make their repositories.
fn roots() -> Vec<PathBuf> {
    vec![PathBuf::from(railyard_server::testing::file_source_root())]
}

use railyard_server::pipeline::{
    detect,
    git::{Checkout, FetchError, fetch},
};

fn sh_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository with two commits on `main` and a `feature` branch.
fn fixture(root: &Path) -> (String, String, String) {
    let repo = root.join("upstream");
    std::fs::create_dir_all(&repo).unwrap();
    sh_git(&repo, &["init", "--quiet"]);
    std::fs::write(
        repo.join("package.json"),
        r#"{"scripts":{"start":"node server.js"}}"#,
    )
    .unwrap();
    sh_git(&repo, &["add", "."]);
    sh_git(&repo, &["commit", "--quiet", "-m", "first"]);
    let first = sh_git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(
        repo.join("server.js"),
        "require('http').createServer().listen(process.env.PORT)",
    )
    .unwrap();
    sh_git(&repo, &["add", "."]);
    sh_git(&repo, &["commit", "--quiet", "-m", "second"]);
    let second = sh_git(&repo, &["rev-parse", "HEAD"]);
    sh_git(&repo, &["branch", "feature"]);
    (format!("file://{}", repo.display()), first, second)
}

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn fetches_a_branch_head_or_a_commit_and_detects_the_plan() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (url, first, second) = fixture(root.path());

    let dest = root.path().join("checkout-1");
    let head = fetch(
        &Checkout {
            url: &url,
            branch: "main",
            commit: None,
        },
        &dest,
        (&data, &roots()),
        TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(head, second);
    assert!(dest.join("server.js").is_file());
    let plan = detect::detect(&dest, &Default::default()).unwrap();
    assert_eq!(plan.provider, "node");

    let dest = root.path().join("checkout-2");
    let head = fetch(
        &Checkout {
            url: &url,
            branch: "main",
            commit: Some(&first[..12]),
        },
        &dest,
        (&data, &roots()),
        TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(head, first, "the older commit");
    assert!(!dest.join("server.js").exists());

    let dest = root.path().join("checkout-3");
    assert_eq!(
        fetch(
            &Checkout {
                url: &url,
                branch: "feature",
                commit: None
            },
            &dest,
            (&data, &roots()),
            TIMEOUT
        )
        .await
        .unwrap(),
        second
    );
}

#[tokio::test]
async fn git_failures_are_clear() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (url, _, _) = fixture(root.path());
    let err = fetch(
        &Checkout {
            url: &url,
            branch: "nope",
            commit: None,
        },
        &root.path().join("a"),
        (&data, &roots()),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(&err, FetchError::Git(m) if m.contains("nope")), "{err}");
    let err = fetch(
        &Checkout {
            url: &url,
            branch: "main",
            commit: Some("deadbeefdeadbeef"),
        },
        &root.path().join("b"),
        (&data, &roots()),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        FetchError::Git("commit deadbeefdeadbeef is not on branch main".into())
    );
    let missing = format!("file://{}/missing", root.path().display());
    let err = fetch(
        &Checkout {
            url: &missing,
            branch: "main",
            commit: None,
        },
        &root.path().join("c"),
        (&data, &roots()),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FetchError::Git(_)), "{err}");
}

#[tokio::test]
async fn the_injection_corpus_never_reaches_git() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(data.join("postgres")).unwrap();
    let (url, _, _) = fixture(root.path());
    let marker = root.path().join("pwned");
    let touch = format!("touch {}", marker.display());
    let data_url = format!("file://{}/postgres", data.display());
    let bad_branches = [
        format!("main;{touch}"),
        format!("$({touch})"),
        format!("`{touch}`"),
        format!("--upload-pack={touch}"),
        "-c".to_owned(),
        "../x".to_owned(),
    ];
    for branch in &bad_branches {
        let err = fetch(
            &Checkout {
                url: &url,
                branch,
                commit: None,
            },
            &root.path().join("d"),
            (&data, &roots()),
            TIMEOUT,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, FetchError::Invalid(_)), "{branch}: {err}");
    }
    let bad_urls = [
        format!("ext::sh -c {touch}"),
        format!("--upload-pack={touch}"),
        "ssh://-oProxyCommand=x/y".to_owned(),
        data_url,
    ];
    for bad in &bad_urls {
        let err = fetch(
            &Checkout {
                url: bad,
                branch: "main",
                commit: None,
            },
            &root.path().join("e"),
            (&data, &roots()),
            TIMEOUT,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, FetchError::Invalid(_)), "{bad}: {err}");
    }
    for commit in ["HEAD;id", "--output=/tmp/x", "main"] {
        let err = fetch(
            &Checkout {
                url: &url,
                branch: "main",
                commit: Some(commit),
            },
            &root.path().join("f"),
            (&data, &roots()),
            TIMEOUT,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, FetchError::Invalid(_)), "{commit}: {err}");
    }
    assert!(!marker.exists(), "nothing ran");
    assert!(!root.path().join("d").exists() && !root.path().join("e").exists());
}
