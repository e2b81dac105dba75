//! Certificates for TLS tests: a throwaway CA and a server certificate signed by it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway certificate authority and a server certificate for `127.0.0.1` and
/// `localhost` signed by it, made with the `openssl` command.
#[derive(Debug)]
pub struct TestCa {
    /// The CA's certificate (PEM): the root a client must trust.
    pub ca_pem: Vec<u8>,
    /// The server certificate (PEM file).
    pub cert: PathBuf,
    /// The server certificate's private key (PEM file, unencrypted).
    pub key: PathBuf,
}

impl TestCa {
    /// Makes the CA and the server certificate in `dir`.
    ///
    /// # Errors
    ///
    /// When `openssl` is missing or fails (the message says which step).
    pub fn make(dir: &Path) -> Result<TestCa, String> {
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .map_err(|e| format!("openssl: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "openssl {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=crm test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&ca)?;
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&csr)?;
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .map_err(|e| e.to_string())?;
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        Ok(TestCa {
            ca_pem: std::fs::read(dir.join("ca.pem")).map_err(|e| e.to_string())?,
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        })
    }
}
