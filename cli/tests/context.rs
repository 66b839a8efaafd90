//! Named contexts of the command line (docs/adr/0004-security.md §12): `rapidmq context
//! add|ls|use|show|rm` on a temporary `XDG_CONFIG_HOME`, the file's mode, and the precedence
//! flag > environment > context > default proven against real brokers (which one answered shows
//! in the topics it lists), including TLS with a token, a token file and a user's password.

use std::path::{Path, PathBuf};
use std::process::Command;

use rapidmq_testkit::{BrokerOptions, TestBroker};

/// The connection variables a developer's shell may have set; every run starts without them.
const CLEARED_ENV: [&str; 10] = [
    "RAPIDMQ_SERVER",
    "RAPIDMQ_CONTEXT",
    "RAPIDMQ_TOKEN",
    "RAPIDMQ_TLS_CA",
    "RAPIDMQ_TLS_CERT",
    "RAPIDMQ_TLS_KEY",
    "RAPIDMQ_TLS_SERVER_NAME",
    "RAPIDMQ_HTTP",
    "RAPIDMQ_PASSWORD",
    "RAPIDMQ_LOG",
];

/// What a CLI run printed.
#[derive(Debug)]
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn success(self) -> String {
        assert!(self.ok, "the command failed: {}", self.stderr);
        self.stdout
    }

    #[track_caller]
    fn failure(self) -> String {
        assert!(!self.ok, "the command succeeded: {}", self.stdout);
        self.stderr
    }
}

/// A temporary home whose `XDG_CONFIG_HOME` holds the contexts file.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn file(&self) -> PathBuf {
        self.config_dir().join("rapidmq/config.toml")
    }

    /// Runs `rapidmq args` with this home and `env`.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(rapidmq_testkit::broker_binary());
        for name in CLEARED_ENV {
            command.env_remove(name);
        }
        let out = command
            .args(args)
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env("HOME", self.dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn rapidmq(&self, args: &[&str]) -> Run {
        self.run(args, &[])
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const SECRET: &str = "rmq_not-a-real-token_5ecret";

#[test]
fn contexts_are_added_listed_used_shown_and_removed() {
    let home = Home::new();
    assert_eq!(
        home.rapidmq(&["context", "ls", "-o", "json"])
            .success()
            .trim(),
        "[]"
    );

    home.rapidmq(&[
        "context",
        "add",
        "local",
        "--server",
        "127.0.0.1:7420",
        "--token",
        SECRET,
    ])
    .success();
    let added = home
        .rapidmq(&[
            "context",
            "add",
            "prod",
            "--server",
            "https://broker.example.com:7420/",
            "--http",
            "https://broker.example.com:7421",
            "--tls-ca",
            "certs/ca.pem",
            "--tls-server-name",
            "broker.internal",
            "--tenant",
            "acme",
            "--user",
            "acme/alice",
            "--use",
        ])
        .success();
    assert!(added.contains("added context prod, now current"), "{added}");

    let listed = home.rapidmq(&["context", "ls"]).success();
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == name))
            .unwrap_or_else(|| panic!("{name} is not listed: {listed}"))
            .to_string()
    };
    assert!(line("prod").trim_start().starts_with('*'), "{listed}");
    assert!(!line("local").contains('*'), "{listed}");
    assert!(
        line("local").contains("http://127.0.0.1:7420"),
        "a scheme is added: {listed}"
    );
    assert!(!listed.contains(SECRET), "{listed}");

    // `show` without a name shows the current context; the CA path was made absolute.
    let shown = home.rapidmq(&["context", "show", "-o", "json"]).success();
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["name"], "prod");
    assert_eq!(shown["current"], true);
    assert_eq!(shown["server"], "https://broker.example.com:7420");
    assert_eq!(shown["tenant"], "acme");
    assert_eq!(shown["user"], "acme/alice");
    assert_eq!(shown["server_name"], "broker.internal");
    let ca = shown["ca"].as_str().unwrap();
    assert!(
        Path::new(ca).is_absolute() && ca.ends_with("certs/ca.pem"),
        "{ca}"
    );

    // The token is stored (that is what the file is for) but never shown.
    assert!(
        std::fs::read_to_string(home.file())
            .unwrap()
            .contains(SECRET)
    );
    for format in ["table", "json"] {
        let run = home.rapidmq(&["context", "show", "local", "-o", format]);
        assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
        let shown = run.success();
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    home.rapidmq(&["context", "use", "local"]).success();
    let listed = home.rapidmq(&["context", "ls", "-o", "json"]).success();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let current: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["current"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(current, ["local"]);
    // --context and RAPIDMQ_CONTEXT pick the context `show` shows by default.
    assert!(
        home.rapidmq(&["--context", "prod", "context", "show"])
            .success()
            .contains("acme")
    );
    let by_env = home
        .run(&["context", "show"], &[("RAPIDMQ_CONTEXT", "prod")])
        .success();
    assert!(by_env.contains("acme"), "{by_env}");
    let empty = home
        .run(&["context", "show"], &[("RAPIDMQ_CONTEXT", "")])
        .success();
    assert!(
        empty.contains("local"),
        "an empty RAPIDMQ_CONTEXT is unset: {empty}"
    );

    let removed = home.rapidmq(&["context", "rm", "local"]).success();
    assert!(removed.contains("no context is current now"), "{removed}");
    let err = home.rapidmq(&["context", "show"]).failure();
    assert!(err.contains("no context is in use"), "{err}");
    let listed = home.rapidmq(&["context", "ls"]).success();
    assert!(
        listed.contains("prod") && !listed.contains("local"),
        "{listed}"
    );
    assert!(
        !std::fs::read_to_string(home.file())
            .unwrap()
            .contains(SECRET)
    );
}

#[test]
fn mistakes_get_clear_errors() {
    let home = Home::new();
    home.rapidmq(&["context", "add", "dev", "--server", "127.0.0.1:7420"])
        .success();

    for args in [
        &["context", "use", "nope"][..],
        &["context", "show", "nope"],
        &["context", "rm", "nope"],
        &["--context", "nope", "topic", "list"],
    ] {
        let err = home.rapidmq(args).failure();
        assert!(err.contains("no context `nope`"), "{args:?}: {err}");
        assert!(err.contains("rapidmq context ls"), "{args:?}: {err}");
    }
    let err = home
        .run(&["status"], &[("RAPIDMQ_CONTEXT", "nope")])
        .failure();
    assert!(err.contains("no context `nope`"), "{err}");

    for credentials in [
        &["--token", SECRET, "--user", "alice"][..],
        &["--token-file", "/tmp/t", "--user", "alice"],
        &["--token", SECRET, "--token-file", "/tmp/t"],
    ] {
        let args = [&["context", "add", "two"][..], credentials].concat();
        let err = home.rapidmq(&args).failure();
        assert!(
            err.contains("give one credential"),
            "{credentials:?}: {err}"
        );
    }

    for (flag, url) in [
        ("--server", "ftp://broker:7420"),
        ("--server", "http://"),
        ("--http", "http://broker:7421/v1"),
        ("--server", "broker:port"),
    ] {
        let err = home
            .rapidmq(&["context", "add", "bad", flag, url])
            .failure();
        assert!(err.contains(flag), "{url}: {err}");
    }
    let err = home.rapidmq(&["context", "add", "dev"]).failure();
    assert!(err.contains("context `dev` exists"), "{err}");
    let err = home.rapidmq(&["context", "add", "a/b"]).failure();
    assert!(err.contains("not a valid name"), "{err}");
    assert!(!home.rapidmq(&["context", "ls"]).success().contains("bad"));

    // A file edited by hand is checked as strictly.
    std::fs::write(
        home.file(),
        "[contexts.edited]\ntoken = \"x\"\nuser = \"alice\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    set_mode(&home.file(), 0o600);
    let err = home.rapidmq(&["context", "ls"]).failure();
    assert!(
        err.contains("more than one credential (token, user)"),
        "{err}"
    );
    std::fs::write(home.file(), "current = \"gone\"\n").unwrap();
    let err = home.rapidmq(&["status"]).failure();
    assert!(
        err.contains("current context `gone` does not exist"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn the_file_is_written_private_and_refused_when_others_can_read_it() {
    let home = Home::new();
    home.rapidmq(&["context", "add", "dev", "--token", SECRET, "--use"])
        .success();
    assert_eq!(mode(&home.file()), 0o600);
    assert_eq!(mode(home.file().parent().unwrap()), 0o700);
    // Written by rename: nothing else is left beside it.
    let entries: Vec<_> = std::fs::read_dir(home.file().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["config.toml"]);

    set_mode(&home.file(), 0o644);
    for args in [&["context", "ls"][..], &["topic", "list"]] {
        let err = home.rapidmq(args).failure();
        assert!(err.contains("mode 0644"), "{args:?}: {err}");
        assert!(err.contains("chmod 600"), "{args:?}: {err}");
    }
    set_mode(&home.file(), 0o640);
    assert!(
        home.rapidmq(&["context", "ls"])
            .failure()
            .contains("mode 0640")
    );
    // Rewriting keeps the mode private even when the old file was not.
    set_mode(&home.file(), 0o600);
    home.rapidmq(&["context", "add", "other", "--server", "127.0.0.1:1"])
        .success();
    assert_eq!(mode(&home.file()), 0o600);
}

/// Creates `topic` on `broker` through the CLI (with `--server`, no context involved).
fn create_topic(home: &Home, broker: &TestBroker, topic: &str) {
    home.rapidmq(&["--server", &broker.grpc_url(), "topic", "create", topic])
        .success();
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_context() {
    let (a, b) = (TestBroker::start(), TestBroker::start());
    let home = Home::new();
    create_topic(&home, &a, "only-on-a");
    create_topic(&home, &b, "only-on-b");
    let answered = |run: Run| {
        let topics = run.success();
        match (topics.contains("only-on-a"), topics.contains("only-on-b")) {
            (true, false) => "a",
            (false, true) => "b",
            _ => panic!("unexpected topics: {topics}"),
        }
    };
    home.rapidmq(&[
        "context",
        "add",
        "a",
        "--server",
        a.grpc_addr(),
        "--http",
        &a.http_url(),
        "--use",
    ])
    .success();
    home.rapidmq(&["context", "add", "b", "--server", &b.grpc_url()])
        .success();
    let (a_url, b_url) = (a.grpc_url(), b.grpc_url());

    assert_eq!(
        answered(home.rapidmq(&["topic", "list"])),
        "a",
        "the current context"
    );
    let env_b = [("RAPIDMQ_SERVER", b_url.as_str())];
    assert_eq!(
        answered(home.run(&["topic", "list"], &env_b)),
        "b",
        "env beats context"
    );
    assert_eq!(
        answered(home.run(&["--server", &a_url, "topic", "list"], &env_b)),
        "a",
        "flag beats env"
    );
    assert_eq!(
        answered(home.rapidmq(&["--server", &b_url, "topic", "list"])),
        "b",
        "flag beats context"
    );

    // Choosing the context: --context beats RAPIDMQ_CONTEXT beats `current`.
    assert_eq!(
        answered(home.rapidmq(&["--context", "b", "topic", "list"])),
        "b"
    );
    let context_b = [("RAPIDMQ_CONTEXT", "b")];
    assert_eq!(answered(home.run(&["topic", "list"], &context_b)), "b");
    assert_eq!(
        answered(home.run(&["--context", "a", "topic", "list"], &context_b)),
        "a"
    );

    // `context add` stores what is on its command line, never the environment.
    home.run(&["context", "add", "bare"], &env_b).success();
    let shown = home
        .rapidmq(&["context", "show", "bare", "-o", "json"])
        .success();
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["server"], serde_json::Value::Null, "{shown}");

    // The context's REST URL is trace's default; --http beats it.
    home.rapidmq(&["publish", "only-on-a", "hello", "--msg-id", "m-1"])
        .success();
    let traced = home
        .rapidmq(&["trace", "--msg-id", "m-1", "-o", "json"])
        .success();
    let events: serde_json::Value = serde_json::from_str(&traced).unwrap();
    assert_eq!(events[0]["kind"], "published", "{events}");
    let elsewhere = home
        .rapidmq(&[
            "trace",
            "--http",
            &b.http_url(),
            "--msg-id",
            "m-1",
            "-o",
            "json",
        ])
        .success();
    assert_eq!(elsewhere.trim(), "[]", "broker b has no such message");
}

/// A broker with TLS from `rapidmq tls dev-certs` in `certs` and `--auth`, its admin made from
/// a fresh token.
fn secure_broker(certs: &Path) -> (TestBroker, String) {
    let made = Command::new(rapidmq_testkit::broker_binary())
        .args(["tls", "dev-certs", "--out"])
        .arg(certs)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let admin = rapidmq_broker::auth::Token::generate().unwrap().to_string();
    let file = |name: &str| certs.join(name).display().to_string();
    let broker = TestBroker::start_with(BrokerOptions {
        args: vec![
            "--tls-cert-file".into(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--auth".into(),
        ],
        env: vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".into(), admin.clone())],
    });
    (broker, admin)
}

#[test]
fn a_context_with_a_ca_and_credentials_reaches_a_tls_and_auth_broker() {
    let home = Home::new();
    let certs = home.dir.path().join("certs");
    let (broker, admin) = secure_broker(&certs);
    let ca = certs.join("ca.pem").display().to_string();
    let server = format!("https://{}", broker.grpc_addr());
    let http = broker.http_url().replace("http://", "https://");
    let secure = |name: &str, credential: &[&str]| {
        let base = [
            "context", "add", name, "--server", &server, "--http", &http, "--tls-ca", &ca,
        ];
        home.rapidmq(&[&base[..], credential].concat()).success();
    };

    secure("admin", &["--token", &admin, "--use"]);
    assert_eq!(home.rapidmq(&["whoami"]).success().trim(), "default/admin");
    home.rapidmq(&["topic", "create", "secured"]).success();
    // The REST side gets the same TLS settings and the token.
    home.rapidmq(&["publish", "secured", "hello", "--msg-id", "m-1"])
        .success();
    let traced = home
        .rapidmq(&["trace", "--msg-id", "m-1", "-o", "json"])
        .success();
    assert!(traced.contains("published"), "{traced}");
    // A --token flag replaces the context's credential.
    let err = home
        .rapidmq(&["--token", "rmq_wrong_wrong", "whoami"])
        .failure();
    assert!(err.contains("UNAUTHENTICATED"), "{err}");

    let token_file = home.dir.path().join("token");
    std::fs::write(&token_file, format!("{admin}\n")).unwrap();
    secure("from-file", &["--token-file", token_file.to_str().unwrap()]);
    let run = home.rapidmq(&["--context", "from-file", "whoami"]);
    assert_eq!(run.success().trim(), "default/admin");

    // A user's password comes from RAPIDMQ_PASSWORD and is never written down.
    home.run(
        &["user", "create", "bob", "--role", "admin"],
        &[("RAPIDMQ_PASSWORD", "bobs-password")],
    )
    .success();
    secure("bob", &["--user", "bob"]);
    let bob = [
        ("RAPIDMQ_CONTEXT", "bob"),
        ("RAPIDMQ_PASSWORD", "bobs-password"),
    ];
    assert_eq!(home.run(&["whoami"], &bob).success().trim(), "default/bob");
    let traced = home.run(&["trace", "--msg-id", "m-1"], &bob).success();
    assert!(
        traced.contains("published"),
        "a user logs in over REST too: {traced}"
    );
    let wrong = [("RAPIDMQ_CONTEXT", "bob"), ("RAPIDMQ_PASSWORD", "not-it")];
    assert!(
        home.run(&["whoami"], &wrong)
            .failure()
            .contains("UNAUTHENTICATED")
    );
    assert!(
        !std::fs::read_to_string(home.file())
            .unwrap()
            .contains("bobs-password")
    );

    // An http:// server with the context's TLS settings is a mistake, said as such.
    let plain = format!("http://{}", broker.grpc_addr());
    let err = home.rapidmq(&["--server", &plain, "whoami"]).failure();
    assert!(err.contains("context `admin` has TLS settings"), "{err}");

    // Without the context's CA the broker's certificate is not trusted.
    home.rapidmq(&[
        "context", "add", "no-ca", "--server", &server, "--token", &admin,
    ])
    .success();
    let err = home.rapidmq(&["--context", "no-ca", "whoami"]).failure();
    assert!(err.contains("TLS"), "{err}");
}

/// Answers one HTTP request with an empty flow-event list and returns the request's head.
fn capture_one_request(listener: std::net::TcpListener) -> std::thread::JoinHandle<String> {
    use std::io::{Read as _, Write as _};
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let body = r#"{"events":[],"capacity":1}"#;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8(head).unwrap().to_ascii_lowercase()
    })
}

/// The broker side of tenants is not in this branch yet, so what is checked here is the wire:
/// a context's tenant and token go with the REST request as `rapidmq-tenant` and a bearer token.
#[test]
fn a_contexts_tenant_and_token_go_with_rest_requests() {
    let home = Home::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    let request = capture_one_request(listener);
    home.rapidmq(&[
        "context", "add", "acme", "--http", &http, "--tenant", "acme", "--token", SECRET, "--use",
    ])
    .success();
    home.rapidmq(&["trace", "--msg-id", "m-1"]).success();
    let head = request.join().unwrap();
    assert!(head.starts_with("get /v1/flow-events?"), "{head}");
    assert!(head.contains("\r\nrapidmq-tenant: acme\r\n"), "{head}");
    assert!(
        head.contains(&format!(
            "\r\nauthorization: bearer {}\r\n",
            SECRET.to_ascii_lowercase()
        )),
        "{head}"
    );
}
