//! A throwaway PostgreSQL server for tests, from the local server binaries.
//!
//! [`postgres_for_tests`] picks, in order: a fresh database (dropped afterwards) on the
//! server named by `CRM_TEST_POSTGRES_URL`; a
//! new cluster made with `initdb` and started with `pg_ctl` (found on `PATH` or under
//! `/usr/lib/postgresql/*/bin`) in a temporary directory, listening only on a unix socket,
//! stopped and removed when dropped, even when a test fails; or nothing, after printing one
//! line saying why the PostgreSQL tests are skipped. With `CRM_REQUIRE_POSTGRES=1` that skip
//! is a failure instead.
//!
//! PostgreSQL refuses to run as root: when the current user is root, `initdb` and `pg_ctl`
//! run as the `postgres` system user (through `runuser`), in a directory that user owns.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where PostgreSQL tests run.
#[derive(Debug)]
pub enum PostgresTarget {
    /// A cluster started for these tests, removed when dropped.
    Throwaway(PostgresServer),
    /// A fresh database on an existing server (from `CRM_TEST_POSTGRES_URL`), dropped when
    /// dropped.
    External(ScratchDatabase),
}

impl PostgresTarget {
    /// A libpq connection string for database `dbname` of a throwaway cluster; for an
    /// external server, the scratch database's (whatever `dbname` says).
    pub fn connection_string(&self, dbname: &str) -> String {
        match self {
            PostgresTarget::Throwaway(s) => s.connection_string(dbname),
            PostgresTarget::External(db) => db.connection_string(),
        }
    }
}

/// A database of its own on an existing server, created through `psql` and dropped (with
/// `FORCE`, closing what is still connected) when this value is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    server: String,
    name: String,
}

fn psql_on(server: &str, sql: &str) -> Result<String, String> {
    run(
        Command::new("psql").args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            server,
            "-c",
            sql,
        ]),
        "psql",
    )
}

impl ScratchDatabase {
    /// Creates a database with a new name on the server that `server` (a libpq connection
    /// string or `postgres://` URL, with rights to create databases) connects to.
    ///
    /// # Errors
    ///
    /// When `psql` is missing or the server refuses.
    pub fn create(server: &str) -> Result<ScratchDatabase, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "crm_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        psql_on(server, &format!("CREATE DATABASE {name}"))?;
        Ok(ScratchDatabase {
            server: server.to_string(),
            name,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's connection string with the database swapped for this one.
    pub fn connection_string(&self) -> String {
        with_database(&self.server, &self.name)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Err(why) = psql_on(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("could not drop the test database {}: {why}", self.name);
        }
    }
}

/// `server` (URL or key=value form) naming database `name` instead.
fn with_database(server: &str, name: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = server.strip_prefix(scheme) {
            let (authority, query) = match rest.split_once('?') {
                Some((a, q)) => (a, Some(q)),
                None => (rest, None),
            };
            let host = authority.split_once('/').map_or(authority, |(h, _)| h);
            return match query {
                Some(q) => format!("{scheme}{host}/{name}?{q}"),
                None => format!("{scheme}{host}/{name}"),
            };
        }
    }
    // key=value: a later dbname wins.
    format!("{server} dbname={name}")
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct PostgresServer {
    root: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
}

fn command(run_as: &Option<String>, program: &Path) -> Command {
    match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(user).arg("--").arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn run(c: &mut Command, what: &str) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{what} failed: {}",
            err.lines().last().unwrap_or("no output")
        ))
    }
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        versions.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        versions.pop()
    })
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u"), "id -u").is_ok_and(|s| s.trim() == "0")
}

impl PostgresServer {
    /// Makes and starts a new cluster, or says why it could not.
    pub fn start() -> Result<PostgresServer, String> {
        Self::start_inner(None)
    }

    /// Like [`start`](Self::start), and also listening on `127.0.0.1` (a free port) with TLS
    /// on, serving `cert` and `key` (PEM files); see [`tcp_connection_string`](Self::tcp_connection_string).
    pub fn start_with_tls(cert: &Path, key: &Path) -> Result<PostgresServer, String> {
        Self::start_inner(Some((cert, key)))
    }

    fn start_inner(tls: Option<(&Path, &Path)>) -> Result<PostgresServer, String> {
        let bin = find_binaries().ok_or("no initdb/pg_ctl on PATH or under /usr/lib/postgresql")?;
        let run_as = is_root().then(|| "postgres".to_string());
        let root = tempfile::Builder::new()
            .prefix("crm-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let mut owner = None;
        if let Some(user) = &run_as {
            let id = |flag: &str| -> Result<u32, String> {
                run(Command::new("id").arg(flag).arg(user), "id")?
                    .trim()
                    .parse()
                    .map_err(|_| format!("no uid for {user}"))
            };
            let (uid, gid) = (id("-u")?, id("-g")?);
            std::os::unix::fs::chown(root.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", root.path().display()))?;
            owner = Some((uid, gid));
        }
        let data = root.path().join("data");
        let mut initdb = command(&run_as, &bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "--auth=trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        run(&mut initdb, "initdb")?;
        let mut listen = "''".to_string();
        let mut port = 5432;
        if let Some((cert, key)) = tls {
            // The server reads its certificate and key from the data directory; the key must
            // belong to the server's user and be private to it.
            for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
                let target = data.join(to);
                std::fs::copy(from, &target)
                    .map_err(|e| format!("copy {}: {e}", from.display()))?;
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&target, Some(uid), Some(gid))
                        .map_err(|e| format!("chown {}: {e}", target.display()))?;
                }
                std::fs::set_permissions(
                    &target,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .map_err(|e| format!("chmod {}: {e}", target.display()))?;
            }
            listen = "'127.0.0.1' -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
                .to_string();
            port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| format!("a free port: {e}"))?;
        }
        let server = PostgresServer {
            root,
            bin,
            run_as,
            port,
        };
        let options = format!(
            "-c listen_addresses={listen} -k {} -p {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            server.socket_dir().display(),
            server.port
        );
        let mut start = command(&server.run_as, &server.bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(server.root.path().join("server.log"))
            .args(["-w", "-o", &options, "start"]);
        run(&mut start, "pg_ctl start")?;
        Ok(server)
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.root.path()
    }

    /// The port number naming the socket.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq connection string for database `dbname` as user `postgres`.
    pub fn connection_string(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={dbname}",
            self.socket_dir().display(),
            self.port
        )
    }

    /// A libpq connection string for database `dbname` as user `postgres` over TCP to
    /// `127.0.0.1` (only for a server from [`start_with_tls`](Self::start_with_tls)).
    pub fn tcp_connection_string(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.port
        )
    }

    /// Runs SQL through `psql` (if installed) and returns its unaligned output.
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String, String> {
        let mut c = Command::new("psql");
        c.arg("-X")
            .arg("-At")
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                "postgres",
                "-d",
                dbname,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ]);
        run(&mut c, "psql")
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let mut stop = command(&self.run_as, &self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.root.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
    }
}

/// The PostgreSQL server tests should use, or `None` after printing why they are skipped.
///
/// # Panics
///
/// When no server can be had and `CRM_REQUIRE_POSTGRES=1`.
pub fn postgres_for_tests() -> Option<PostgresTarget> {
    if let Ok(url) = std::env::var("CRM_TEST_POSTGRES_URL") {
        match ScratchDatabase::create(&url) {
            Ok(db) => return Some(PostgresTarget::External(db)),
            Err(why) => {
                panic!("CRM_TEST_POSTGRES_URL is set, but no database could be made on it: {why}")
            }
        }
    }
    match PostgresServer::start() {
        Ok(server) => Some(PostgresTarget::Throwaway(server)),
        Err(why) => {
            if std::env::var("CRM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("CRM_REQUIRE_POSTGRES=1 but no PostgreSQL server: {why}");
            }
            eprintln!("PostgreSQL tests skipped: {why}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_database_names_replace_the_server_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5433/main?sslmode=require", "x"),
            "postgres://u:p@h:5433/x?sslmode=require"
        );
        assert_eq!(with_database("postgresql://h", "x"), "postgresql://h/x");
        assert_eq!(
            with_database("host=/tmp user=u dbname=main", "x"),
            "host=/tmp user=u dbname=main dbname=x"
        );
    }

    #[test]
    fn scratch_databases_are_made_and_dropped() {
        let server = match PostgresServer::start() {
            Ok(s) => s,
            Err(why) => {
                if std::env::var("CRM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                    panic!("CRM_REQUIRE_POSTGRES=1 but no PostgreSQL server: {why}");
                }
                eprintln!("PostgreSQL tests skipped: {why}");
                return;
            }
        };
        let admin = server.connection_string("postgres");
        let exists = |name: &str| {
            server
                .psql(
                    "postgres",
                    &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
                )
                .unwrap()
                .trim()
                .to_string()
        };
        let (a, b) = (
            ScratchDatabase::create(&admin).unwrap(),
            ScratchDatabase::create(&admin).unwrap(),
        );
        assert_ne!(a.name(), b.name());
        let name = a.name().to_string();
        assert_eq!(exists(&name), "1");
        assert!(a.connection_string().ends_with(&format!("dbname={name}")));
        let target = PostgresTarget::External(a);
        assert!(target.connection_string("ignored").ends_with(&name));
        drop(target);
        assert_eq!(exists(&name), "0", "dropped with the target");
        assert_eq!(exists(b.name()), "1");
    }
}
