//! TLS on both sides: towards clients (splitrail is the TLS server) and
//! towards backends (splitrail is the TLS client).
//!
//! MySQL starts every connection in plain text and upgrades it after the
//! greeting (the client's SSL Request), so a connection's socket changes
//! type half-way through the handshake: [`Stream`] is that socket, plain or
//! encrypted, and the packet codec works over either.
//!
//! Certificates and keys are PEM files read once at start-up (and again on
//! reload of the whole config, which needs a restart today).

use crate::config::{BackendTlsConfig, BackendTlsMode, TlsConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's socket: plain TCP, or TLS over it after the upgrade.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
    /// The compressed protocol over a plain or TLS stream.
    Compressed(Box<crate::protocol::compress::Compressed<Stream>>),
    /// What is left after a failed upgrade: every operation fails.
    Closed,
}

impl Stream {
    /// The TCP socket underneath (for socket options and liveness peeks).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(tcp) => Some(tcp),
            Stream::Tls(tls) => Some(tls.get_ref().0),
            Stream::Compressed(c) => c.get_ref().tcp(),
            Stream::Closed => None,
        }
    }

    pub fn is_tls(&self) -> bool {
        match self {
            Stream::Tls(_) => true,
            Stream::Compressed(c) => c.get_ref().is_tls(),
            Stream::Plain(_) | Stream::Closed => false,
        }
    }

    /// Input received but not yet readable as plain bytes (inside the
    /// compressed protocol's buffers).
    pub fn has_buffered_input(&self) -> bool {
        match self {
            Stream::Compressed(c) => c.has_buffered_input(),
            _ => false,
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(tcp: TcpStream) -> Self {
        Stream::Plain(tcp)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "connection closed by a failed TLS upgrade",
    )
}

/// Loading certificates or keys failed; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsSetupError(String);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsSetupError(format!("cannot read certificates from {path}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsSetupError(format!("no certificate in {path}")));
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsSetupError(format!("cannot read a private key from {path}: {e}")))
}

/// The acceptor for client connections, when `[tls]` names a certificate.
pub fn acceptor(config: &TlsConfig) -> Result<Option<tokio_rustls::TlsAcceptor>, TlsSetupError> {
    if !config.enabled() {
        return Ok(None);
    }
    let certs = load_certs(&config.cert_file)?;
    let key = load_key(&config.key_file)?;
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsSetupError(format!("{}: {e}", config.cert_file)))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))))
}

/// How splitrail opens TLS to backends (`None`: plain connections).
#[derive(Clone)]
pub struct BackendTls {
    connector: tokio_rustls::TlsConnector,
    /// Overrides the host part of a node's address as the name checked
    /// against its certificate.
    server_name: Option<ServerName<'static>>,
}

impl BackendTls {
    pub fn from_config(config: &BackendTlsConfig) -> Result<Option<BackendTls>, TlsSetupError> {
        if config.mode == BackendTlsMode::Disabled {
            return Ok(None);
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError(e.to_string()))?;
        let builder = match config.mode {
            BackendTlsMode::Disabled | BackendTlsMode::Required => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider()))),
            BackendTlsMode::VerifyCa | BackendTlsMode::VerifyIdentity => {
                let mut roots = RootCertStore::empty();
                for cert in load_certs(&config.ca_file)? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsSetupError(format!("{}: {e}", config.ca_file)))?;
                }
                let roots = Arc::new(roots);
                if config.mode == BackendTlsMode::VerifyIdentity {
                    builder.with_root_certificates(roots)
                } else {
                    let verifier = CaOnlyVerifier::new(roots)?;
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(verifier))
                }
            }
        };
        let client = if config.cert_file.is_empty() {
            builder.with_no_client_auth()
        } else {
            builder
                .with_client_auth_cert(load_certs(&config.cert_file)?, load_key(&config.key_file)?)
                .map_err(|e| TlsSetupError(format!("{}: {e}", config.cert_file)))?
        };
        let server_name = if config.server_name.is_empty() {
            None
        } else {
            Some(
                ServerName::try_from(config.server_name.clone())
                    .map_err(|e| TlsSetupError(format!("backend_tls.server_name: {e}")))?,
            )
        };
        Ok(Some(BackendTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            server_name,
        }))
    }

    /// Upgrades a backend connection after its greeting; `addr` is the
    /// node's `host:port`, whose host is the name checked unless
    /// `server_name` is set.
    pub async fn connect(&self, addr: &str, tcp: TcpStream) -> io::Result<Stream> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let host = addr
                    .rsplit_once(':')
                    .map_or(addr, |(host, _)| host)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                ServerName::try_from(host.to_string())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
            }
        };
        let tls = self.connector.connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(tls))))
    }
}

/// `verify_ca`: the chain must lead to the configured CA; the name in the
/// certificate is not checked (MySQL's `--ssl-mode=VERIFY_CA`).
#[derive(Debug)]
struct CaOnlyVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl CaOnlyVerifier {
    fn new(roots: Arc<RootCertStore>) -> Result<Self, TlsSetupError> {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TlsSetupError(e.to_string()))?;
        Ok(CaOnlyVerifier { inner })
    }
}

impl ServerCertVerifier for CaOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `required`: encryption without authentication of the server (MySQL's
/// `--ssl-mode=REQUIRED`); protects against eavesdropping only. Signatures
/// are still checked, so the peer must hold the certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
