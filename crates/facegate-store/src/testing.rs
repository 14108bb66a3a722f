//! Test support: a throw-away PostgreSQL server (Debian's PostgreSQL programs, `initdb` in a
//! temporary folder, `pg_ctl` on a free loopback port), so the storage suite and the cluster tests
//! run against a real PostgreSQL with nothing installed by hand. As root, the server runs as
//! `nobody` (PostgreSQL refuses to run as root). Stopped (immediately) when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running PostgreSQL for one test run.
#[derive(Debug)]
pub struct TempPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_nobody: bool,
}

/// Where Debian puts the server programs (the newest version found), or `FACEGATE_PG_BIN`.
pub fn postgres_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FACEGATE_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl TempPostgres {
    /// For a test: a server, or `None` after printing why `what` is skipped. With
    /// `FACEGATE_REQUIRE_POSTGRES=1` (CI) a server that cannot start fails the test instead.
    pub fn for_test(what: &str) -> Option<TempPostgres> {
        match TempPostgres::start() {
            Ok(pg) => Some(pg),
            Err(e) if std::env::var("FACEGATE_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
                panic!("PostgreSQL is required here (FACEGATE_REQUIRE_POSTGRES=1) but cannot start: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: {what} ({e})");
                None
            }
        }
    }

    /// Starts a server, or says why it cannot (no PostgreSQL programs, initdb failed, ...).
    pub fn start() -> Result<TempPostgres, String> {
        let bin = postgres_bin().ok_or("no PostgreSQL server programs (apt-get install postgresql)")?;
        let base = std::env::temp_dir().join(format!(
            "facegate-pg-{}-{}",
            std::process::id(),
            crate::testing_counter()
        ));
        let dir = base.join("data");
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        let as_nobody = is_root();
        if as_nobody {
            let ok = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&base)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("chown nobody {}", base.display()));
            }
        }
        let port = free_port().map_err(|e| e.to_string())?;
        let pg = TempPostgres {
            dir,
            bin,
            port,
            as_nobody,
        };
        pg.run(&format!(
            "{} -D {} -U postgres -A trust -E UTF8 --no-sync >/dev/null",
            pg.bin.join("initdb").display(),
            pg.dir.display()
        ))?;
        pg.run(&format!(
            "{} -D {} -w -t 60 -l {}/log -o \"-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start >/dev/null",
            pg.bin.join("pg_ctl").display(),
            pg.dir.display(),
            base.display(),
            pg.port,
            base.display(),
        ))?;
        Ok(pg)
    }

    fn run(&self, cmd: &str) -> Result<(), String> {
        let out = if self.as_nobody {
            Command::new("su")
                .args(["nobody", "-s", "/bin/sh", "-c", cmd])
                .output()
        } else {
            Command::new("/bin/sh").args(["-c", cmd]).output()
        }
        .map_err(|e| format!("{cmd}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A new, empty database on this server, and its URL.
    pub fn database(&self, name: &str) -> Result<String, String> {
        self.run(&format!(
            "{} -h 127.0.0.1 -p {} -U postgres {name}",
            self.bin.join("createdb").display(),
            self.port
        ))?;
        Ok(self.url(name))
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let _ = self.run(&format!(
            "{} -D {} -m immediate stop >/dev/null 2>&1",
            self.bin.join("pg_ctl").display(),
            self.dir.display()
        ));
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}
