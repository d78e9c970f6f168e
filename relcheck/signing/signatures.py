"""SSH signatures (ssh-keygen -Y sign, verified in Python with sshsig) over small canonical statements: role
sign-offs of a report, attestations of items only a person can confirm, and waivers.

A statement is a few "key: value" lines under a "relcheck-<kind>/1" header. Signed files are checked byte for
byte: the statement must be exactly what its fields produce and the signature exactly in ssh-keygen's armor, so
any changed byte fails verification.
"""

from __future__ import annotations

import binascii
import fnmatch
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sshsig
from sshsig.allowed_signers import load_allowed_signers_file

from relcheck.core.errors import RelcheckError

NAMESPACE = "relcheck-release"
_KEY = re.compile(r"^[a-z][a-z0-9-]*$")


class SigningError(RelcheckError):
    pass


@dataclass(frozen=True)
class Statement:
    kind: str
    fields: tuple[tuple[str, str], ...]

    def text(self) -> str:
        for key, value in self.fields:
            if not _KEY.match(key) or "\n" in value or "\r" in value:
                raise SigningError(f"statement field {key!r} must be one line")
        return f"relcheck-{self.kind}/1\n" + "".join(f"{k}: {v}\n" for k, v in self.fields)

    def get(self, key: str) -> str:
        return dict(self.fields).get(key, "")

    @staticmethod
    def parse(text: str) -> "Statement":
        lines = text.split("\n")
        header = re.match(r"^relcheck-([a-z]+)/1$", lines[0] if lines else "")
        if not header or lines[-1] != "":
            raise SigningError("not a relcheck statement")
        fields = []
        for line in lines[1:-1]:
            key, sep, value = line.partition(": ")
            if not sep:
                raise SigningError(f"malformed statement line {line!r}")
            fields.append((key, value))
        statement = Statement(header.group(1), tuple(fields))
        if statement.text() != text:
            raise SigningError("statement is not in canonical form")
        return statement


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def public_key(key: Path) -> str:
    """ "type base64" of a private key's public half (KEY.pub, else derived with ssh-keygen -y)."""
    pub = Path(f"{key}.pub")
    if pub.is_file():
        text = pub.read_text()
    else:
        result = subprocess.run(
            ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            raise SigningError(f"cannot read the public key of {key}: {result.stderr.strip()[:200]}")
        text = result.stdout
    return " ".join(text.split()[:2])


def sign(text: str | bytes, key: Path, namespace: str = NAMESPACE) -> str:
    """An armored SSH signature of text (a statement, or the bytes of a DSSE envelope's PAE) in a namespace, by
    ssh-keygen."""
    if not Path(key).is_file():
        raise SigningError(f"no key at {key}")
    with tempfile.TemporaryDirectory() as workdir:
        message = Path(workdir) / "statement"
        message.write_bytes(text if isinstance(text, bytes) else text.encode())
        try:
            result = subprocess.run(
                ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", namespace, str(message)],
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise SigningError("ssh-keygen is not installed (openssh-client)") from None
        if result.returncode != 0:
            raise SigningError(f"ssh-keygen could not sign: {result.stderr.strip()[:200]}")
        return Path(f"{message}.sig").read_text()


def dearmor(armored: str) -> bytes:
    """The signature bytes of an armored SSH signature (b"" when it is not one)."""
    try:
        return sshsig.sshsig.ssh_dearmor_sshsig(armored)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return b""


def armor(raw: bytes) -> str:
    """The armor ssh-keygen writes for these signature bytes (70 columns)."""
    body = binascii.b2a_base64(raw, newline=False).decode()
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return "\n".join(["-----BEGIN SSH SIGNATURE-----", *lines, "-----END SSH SIGNATURE-----", ""])


def canonical_armor(armored: str) -> str:
    """The armor ssh-keygen writes for the same signature bytes (70 columns)."""
    raw = dearmor(armored)
    return armor(raw) if raw else ""


class AllowedSigners:
    """An OpenSSH allowed_signers file: principals and their keys (and namespaces, when restricted)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[tuple[set[str], str, set[str] | None]] = []
        if not path.is_file():
            raise SigningError(f"allowed signers file {path} not found")
        try:
            signers = load_allowed_signers_file(path)
        except (ValueError, NotImplementedError, UnicodeDecodeError) as exc:
            raise SigningError(f"allowed signers file {path.name}: {exc}") from None
        self.validity: list[tuple[datetime | None, datetime | None]] = []
        for signer in signers:
            options = signer.options or {}
            namespaces = options.get("namespaces")
            self.entries.append(
                (
                    {p.strip() for p in signer.principals.split(",")},
                    f"{signer.key_type} {signer.base64_key}",
                    {n.strip() for n in namespaces.split(",")} if namespaces else None,
                )
            )
            try:
                self.validity.append((ssh_time(options.get("valid-after")), ssh_time(options.get("valid-before"))))
            except ValueError as exc:
                raise SigningError(f"allowed signers file {path.name}: {exc}") from None

    def principals_of(self, key: str) -> set[str]:
        return {p for principals, k, _ in self.entries if k == key for p in principals}

    def allows(self, principal: str, key: str, namespace: str = NAMESPACE, at: datetime | None = None) -> bool:
        """As `ssh-keygen -Y verify` decides: the key, a principal pattern and a namespace pattern of one entry,
        valid (valid-after, valid-before) now."""
        now = at or datetime.now(timezone.utc)
        return any(
            k == key
            and ssh_match(principals, principal)
            and (namespaces is None or ssh_match(namespaces, namespace))
            and (after is None or now >= after)
            and (before is None or now < before)
            for (principals, k, namespaces), (after, before) in zip(self.entries, self.validity, strict=True)
        )


def ssh_match(patterns: set[str], value: str) -> bool:
    """OpenSSH's pattern lists (`*`, `?`, `!negated`): a negated match refuses, else any match allows."""

    def matches(pattern: str) -> bool:
        return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))

    if any(p.startswith("!") and matches(p[1:]) for p in patterns):
        return False
    return any(not p.startswith("!") and matches(p) for p in patterns)


def ssh_time(text: str | None) -> datetime | None:
    """valid-after / valid-before: YYYYMMDD[HHMM[SS]], local time unless it ends in Z (OpenSSH's format)."""
    if not text:
        return None
    digits, utc = (text[:-1], True) if text.endswith(("Z", "z")) else (text, False)
    layouts = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if len(digits) not in layouts or not digits.isdigit():
        raise ValueError(f"{text!r} is not an OpenSSH time (YYYYMMDD[HHMM[SS]][Z])")
    parsed = datetime.strptime(digits, layouts[len(digits)])
    return parsed.replace(tzinfo=timezone.utc) if utc else parsed.astimezone()


@dataclass
class Verdict:
    ok: bool
    problem: str = ""
    fingerprint: str = ""


def verify(
    text: str | bytes, armored: str, signers: AllowedSigners, principal: str, namespace: str = NAMESPACE
) -> Verdict:
    """The signature is ssh-keygen's, over exactly this statement, in this namespace, by a key allowed for the
    principal."""
    if armored != canonical_armor(armored):
        return Verdict(False, "signature file altered (not in ssh-keygen's canonical form)")
    try:
        key = sshsig.check_signature(text if isinstance(text, bytes) else text.encode(), armored, namespace)
    except Exception as exc:  # sshsig raises InvalidSignature, ValueError, even AssertionError on malformed input
        return Verdict(
            False,
            f"signature does not verify ({type(exc).__name__}: altered statement or signature, or another namespace)",
        )
    fingerprint = key.sha256_str()
    if not signers.allows(principal, key.openssh_str(), namespace):
        return Verdict(False, f"key {fingerprint} is not an allowed signer for {principal}", fingerprint)
    return Verdict(True, "", fingerprint)


def write_pair(directory: Path, name: str, text: str, armored: str) -> Path:
    from relcheck.core.files import write_atomic

    write_atomic(directory / f"{name}.statement", text)
    write_atomic(directory / f"{name}.statement.sig", armored)
    return directory / f"{name}.statement"


def read_pairs(directory: Path) -> list[tuple[Path, str, str]]:
    """(path, statement text, armored signature) for every signed statement in a directory."""
    pairs = []
    for path in sorted(directory.glob("*.statement")) if directory.is_dir() else []:
        sig = Path(f"{path}.sig")
        pairs.append((path, path.read_text(), sig.read_text() if sig.is_file() else ""))
    return pairs
