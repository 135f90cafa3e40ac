"""The studio's signing keys, made on first use under ``studio_home()/keys`` (beside ``models/`` and ``voices/``).

    keys/provenance-ed25519.pem   ed25519 private key that signs the JSON provenance sidecars (mode 0600)
    keys/c2pa/signer.pem          ES256 (P-256) private key that signs C2PA manifests (mode 0600)
    keys/c2pa/chain.pem           its certificate, then the local CA's (what a C2PA reader is shown)
    keys/c2pa/ca.pem              the local CA certificate (the trust anchor for ``studio verify``)

The local CA's private key is used once, to issue the signer's certificate, and never stored. Files are written
to a temporary name and renamed; two processes making keys at once end with one set (the first rename wins).
"""
from __future__ import annotations

import datetime
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..log import get_logger
from ..paths import models_dir

log = get_logger("trust.keys")

_lock = threading.Lock()
ORGANISATION = "studio (local installation)"


def keys_dir() -> Path:
    """``keys/`` beside the models folder (``$STUDIO_HOME/keys`` or ``~/.local/share/studio/keys``)."""
    return models_dir().parent / "keys"


def _write_private(path: Path, data: bytes, mode: int) -> bool:
    """Write ``data`` to ``path`` unless it exists (True when this call wrote it); the file has ``mode`` from its
    creation on, so a key is never readable by others even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)  # atomic and never replaces: the first writer's key is the key
            return True
        except FileExistsError:
            return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def provenance_key():
    """The ed25519 private key of this installation (made on first use)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path = keys_dir() / "provenance-ed25519.pem"
    with _lock:
        if not path.exists():
            key = ed25519.Ed25519PrivateKey.generate()
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            if _write_private(path, pem, 0o600):
                log.info("made the provenance signing key %s", path)
        return serialization.load_pem_private_key(path.read_bytes(), password=None)


def public_key_bytes(private_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class C2paIdentity:
    chain_pem: bytes  # signer certificate, then the CA's
    key_pem: bytes
    ca_pem: bytes


def c2pa_identity() -> C2paIdentity:
    """The local CA and the ES256 signer certificate it issued (made on first use)."""
    folder = keys_dir() / "c2pa"
    with _lock:
        if not (folder / "signer.pem").exists():
            key_pem, chain_pem, ca_pem = _make_c2pa_identity()
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(folder.parent, 0o700)
            tmp = Path(tempfile.mkdtemp(prefix=".c2pa-", dir=folder.parent))
            try:
                (tmp / "ca.pem").write_bytes(ca_pem)
                (tmp / "chain.pem").write_bytes(chain_pem)
                _write_private(tmp / "signer.pem", key_pem, 0o600)
                os.chmod(tmp, 0o700)
                try:
                    os.rename(tmp, folder)  # atomic; fails when another process made its set first
                    log.info("made the local C2PA certificate authority and signer in %s", folder)
                except OSError:
                    pass
            finally:
                if tmp.exists():
                    import shutil

                    shutil.rmtree(tmp, ignore_errors=True)
        return C2paIdentity((folder / "chain.pem").read_bytes(), (folder / "signer.pem").read_bytes(),
                            (folder / "ca.pem").read_bytes())


def _make_c2pa_identity() -> tuple[bytes, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                         x509.NameAttribute(NameOID.COMMON_NAME, "studio local C2PA root")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, "studio C2PA signer")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    ca_pem = ca.public_bytes(pem)
    return key_pem, cert.public_bytes(pem) + ca_pem, ca_pem
