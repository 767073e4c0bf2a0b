//! TLS as etcd's flags describe it: server and client configurations from PEM files, etcd's
//! `--auto-tls` self-signed certificates, and the accept and dial halves.
//!
//! TLS is terminated here, below everything else, so the rest of a member sees plain streams:
//! the `:authority` repair (`transport::AuthorityFix`) must read HTTP/2 in the clear, and one
//! port serves gRPC (h2) and `/health`, `/metrics` (HTTP/1.1) alike, so ALPN offers both.
//! Crypto is rustls on ring: no OpenSSL, no aws-lc build.
//!
//! As etcd: a trusted CA file, or `--client-cert-auth`, makes client certificates mandatory;
//! auto-TLS certificates are self-signed, so a member dialling one does not verify it (etcd's
//! members skip verification for them too), and auto-TLS ignores `--client-cert-auth`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::transport::{ClientCertCn, Conn, Incoming};

/// A handshake that takes longer than this is dropped, so a silent client holds no task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes finished but not yet taken by the server, per listener.
const ACCEPT_QUEUE_MAX: usize = 128;

/// One side's TLS flags, as etcd names them (`--cert-file`, `--peer-cert-file`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub trusted_ca_file: Option<PathBuf>,
    pub client_cert_auth: bool,
    /// `--auto-tls`: a self-signed certificate when no cert/key files are given.
    pub auto_tls: bool,
}

impl TlsFiles {
    /// Whether a certificate will be served: given as files, or generated.
    pub fn has_identity(&self) -> bool {
        (self.cert_file.is_some() && self.key_file.is_some()) || self.auto_tls
    }

    /// Whether this side's peers must present certificates signed by the trusted CA.
    pub fn requires_client_certs(&self) -> bool {
        self.trusted_ca_file.is_some() || self.client_cert_auth
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("unexpected TLS cipher suite {0:?}")]
    UnknownCipherSuite(String),
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn file_error(path: &Path, e: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The crypto provider every configuration uses: ring, limited to the TLS 1.2 suites named
/// by `--cipher-suites` (Go's names) when any are; TLS 1.3 suites stay on, as in Go.
pub fn provider(cipher_suites: &[String]) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut p = ring::default_provider();
    if !cipher_suites.is_empty() {
        let mut chosen: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .cloned()
            .collect();
        for name in cipher_suites {
            let suite = p
                .cipher_suites
                .iter()
                .find(|s| go_name(s.suite()).is_some_and(|g| g.contains(&name.as_str())))
                .ok_or_else(|| TlsError::UnknownCipherSuite(name.clone()))?;
            chosen.push(*suite);
        }
        p.cipher_suites = chosen;
    }
    Ok(Arc::new(p))
}

/// Go's names for the TLS 1.2 suites ring implements (Go also accepts the short CHACHA20
/// aliases).
fn go_name(suite: rustls::CipherSuite) -> Option<&'static [&'static str]> {
    use rustls::CipherSuite as S;
    Some(match suite {
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => &["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"],
        S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => &["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => &["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
        S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => &[
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        ],
        S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => &[
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        ],
        _ => return None,
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(Arc::new(roots))
}

/// Both protocols on one port: gRPC over h2, the HTTP endpoints over either.
fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// The listening side's configuration. `files` must have an identity (see `auto_tls`).
pub fn server_config(
    files: &TlsFiles,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&files.cert_file, &files.key_file) else {
        return Err(TlsError::Io(io::Error::other(
            "TLS needs --cert-file and --key-file (or --auto-tls)",
        )));
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match (&files.trusted_ca_file, files.requires_client_certs()) {
        (Some(ca), true) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(load_roots(ca)?, provider.clone())
                .build()?,
        ),
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(load_certs(cert)?, load_key(key)?)?;
    config.alpn_protocols = alpn();
    Ok(Arc::new(config))
}

/// The dialling side's configuration: this side's certificate as the client identity (etcd
/// members present their peer certificate to peers), the trusted CA as roots. Without a CA,
/// the server's certificate is not verified, as etcd's members treat self-signed peers.
pub fn client_config(
    files: &TlsFiles,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.trusted_ca_file {
        Some(ca) => builder.with_root_certificates(load_roots(ca)?),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider.clone()))),
    };
    let mut config = match (&files.cert_file, &files.key_file) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// etcd's `--auto-tls`: unless cert and key files are given, a self-signed certificate for the
/// listen URLs' hosts, written once under `dir` (etcd's `<data-dir>/fixtures/client|peer`) and
/// reused after. Client-certificate checks are off, as etcd turns them off.
pub fn auto_tls(files: &mut TlsFiles, dir: &Path, hosts: &[String]) -> Result<(), TlsError> {
    if !files.auto_tls || (files.cert_file.is_some() && files.key_file.is_some()) {
        return Ok(());
    }
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if !cert.exists() || !key.exists() {
        std::fs::create_dir_all(dir)?;
        let mut params = rcgen::CertificateParams::new(hosts.to_vec())?;
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "etcd");
        let pair = rcgen::KeyPair::generate()?;
        let signed = params.self_signed(&pair)?;
        write_private(&key, pair.serialize_pem().as_bytes())?;
        std::fs::write(&cert, signed.pem())?;
    }
    files.cert_file = Some(cert);
    files.key_file = Some(key);
    files.trusted_ca_file = None;
    files.client_cert_auth = false;
    Ok(())
}

/// Writes a private key readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(bytes)
}

/// TLS on every accepted connection. Handshakes run concurrently, each bounded, so a slow or
/// hostile client delays only itself; a failed one is logged and dropped, as etcd drops it.
pub fn accept(mut incoming: Incoming, config: Arc<ServerConfig>) -> Incoming {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Conn>>(ACCEPT_QUEUE_MAX);
    tokio::spawn(async move {
        while let Some(next) = incoming.next().await {
            let conn = match next {
                Ok(conn) => conn,
                Err(e) => {
                    if tx.send(Err(e)).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                    Ok(Ok(tls)) => {
                        let cn = ClientCertCn(client_common_name(&tls));
                        let _ = tx.send(Ok(Conn::with_cert_cn(tls, cn))).await;
                    }
                    Ok(Err(e)) => tracing::info!(error = %e, "rejected TLS connection"),
                    Err(_) => tracing::info!("TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}

/// The common name of the certificate a client presented, which the handshake has verified
/// (a server that does not ask for certificates sees none).
fn client_common_name<S>(tls: &tokio_rustls::server::TlsStream<S>) -> Option<String> {
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Dials TLS over an established stream to `host`.
pub async fn connect<S>(
    config: Arc<ClientConfig>,
    host: &str,
    stream: S,
) -> io::Result<tokio_rustls::client::TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
}

/// Accepts any server certificate, still checking that the handshake is signed by its key:
/// for self-signed (auto-TLS) peers, which have no CA to verify against.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A throwaway certificate authority with one server and one client certificate, for
/// `quorum cluster --tls` and tests. The server certificate serves `127.0.0.1` and
/// `localhost` and is also valid as a client certificate (members present it to each other).
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// Where `TestPki::write_to` put each file.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    pub fn generate() -> Result<TestPki, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "quorum test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        server.distinguished_name.push(DnType::CommonName, "quorum");
        server.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &issuer)?;

        // etcd takes a client certificate's common name as its user name.
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name.push(DnType::CommonName, "root");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &issuer)?;

        Ok(TestPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// Writes `ca.pem`, `server.pem`, `server-key.pem`, `client.pem`, `client-key.pem`.
    pub fn write_to(&self, dir: &Path) -> Result<PkiFiles, TlsError> {
        std::fs::create_dir_all(dir)?;
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        std::fs::write(&files.ca, &self.ca_pem)?;
        std::fs::write(&files.server_cert, &self.server_cert_pem)?;
        write_private(&files.server_key, self.server_key_pem.as_bytes())?;
        std::fs::write(&files.client_cert, &self.client_cert_pem)?;
        write_private(&files.client_key, self.client_key_pem.as_bytes())?;
        Ok(files)
    }
}

impl PkiFiles {
    /// A member's TLS flags with these files, checking client certificates.
    pub fn member_tls(&self) -> TlsFiles {
        TlsFiles {
            cert_file: Some(self.server_cert.clone()),
            key_file: Some(self.server_key.clone()),
            trusted_ca_file: Some(self.ca.clone()),
            client_cert_auth: true,
            auto_tls: false,
        }
    }
}
