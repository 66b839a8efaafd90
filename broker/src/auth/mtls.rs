//! The mTLS identity (docs/adr/0004-security.md §5): a verified client certificate names a user,
//! read as `[tenant/]user` from the field `auth.mtls_identity` picks: the subject's common name,
//! or the first DNS, email or URI subject alternative name (URIs as `rapidmq:tenant/user`).
//!
//! The handshake has verified the certificate against `tls.client_ca_file`; here it is only
//! read (DER, with the RustCrypto `x509-cert` parser).

use std::time::Duration;

use x509_cert::Certificate;
use x509_cert::der::asn1::{Ia5String, PrintableStringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Any, Decode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::config::MtlsIdentity;

const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// The URI scheme a `san_uri` identity is read from: `rapidmq:tenant/user`.
const URI_SCHEME: &str = "rapidmq:";

/// Who a client certificate names under `mode`, and when it stops being valid (`notAfter`);
/// `None` when `mode` is off, the certificate does not parse, or it has no such field.
pub fn identity(der: &[u8], mode: MtlsIdentity) -> Option<(String, Duration)> {
    if mode == MtlsIdentity::Off {
        return None;
    }
    let cert = Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    let name = match mode {
        MtlsIdentity::Off => None,
        MtlsIdentity::SubjectCn => tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|attr| attr.oid == COMMON_NAME)
            .and_then(|attr| text(&attr.value)),
        MtlsIdentity::SanDns | MtlsIdentity::SanEmail | MtlsIdentity::SanUri => {
            let san = tbs
                .extensions
                .iter()
                .flatten()
                .find(|ext| ext.extn_id == SUBJECT_ALT_NAME)?;
            let names = SubjectAltName::from_der(san.extn_value.as_bytes()).ok()?;
            names.0.iter().find_map(|name| match (mode, name) {
                (MtlsIdentity::SanDns, GeneralName::DnsName(s))
                | (MtlsIdentity::SanEmail, GeneralName::Rfc822Name(s)) => Some(ia5(s)),
                (MtlsIdentity::SanUri, GeneralName::UniformResourceIdentifier(s)) => {
                    ia5(s).strip_prefix(URI_SCHEME).map(str::to_string)
                }
                _ => None,
            })
        }
    }?;
    let not_after = tbs.validity.not_after.to_unix_duration();
    Some((name, not_after))
}

fn ia5(s: &Ia5String) -> String {
    s.as_str().to_string()
}

/// A directory string as text: UTF8String or PrintableString.
fn text(value: &Any) -> Option<String> {
    value.decode_as::<String>().ok().or_else(|| {
        value
            .decode_as::<PrintableStringRef<'_>>()
            .ok()
            .map(|s| s.as_str().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn cert(cn: &str, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn each_mode_reads_its_own_field_and_off_reads_nothing() {
        let der = cert(
            "acme/alice",
            vec![
                SanType::DnsName("bob".try_into().unwrap()),
                SanType::Rfc822Name("acme/carol".try_into().unwrap()),
                SanType::URI("https://example.com/x".try_into().unwrap()),
                SanType::URI("rapidmq:acme/dave".try_into().unwrap()),
            ],
        );
        let name = |mode| identity(&der, mode).map(|(name, _)| name);
        assert_eq!(name(MtlsIdentity::Off), None);
        assert_eq!(name(MtlsIdentity::SubjectCn).as_deref(), Some("acme/alice"));
        assert_eq!(name(MtlsIdentity::SanDns).as_deref(), Some("bob"));
        assert_eq!(name(MtlsIdentity::SanEmail).as_deref(), Some("acme/carol"));
        assert_eq!(name(MtlsIdentity::SanUri).as_deref(), Some("acme/dave"));
        let (_, not_after) = identity(&der, MtlsIdentity::SubjectCn).unwrap();
        assert!(not_after.as_secs() > 0);
        let no_sans = cert("alice", vec![]);
        assert_eq!(identity(&no_sans, MtlsIdentity::SanDns), None);
        assert_eq!(
            identity(b"not a certificate", MtlsIdentity::SubjectCn),
            None
        );
    }
}
