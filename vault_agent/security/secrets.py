"""The encrypted secret store: AES-256-GCM over one JSON document, opened by a master key kept outside the vault.

The store is `<vault>/.secrets.enc` (spec/secrets.md): at the vault root, so
no agent's file tools can reach it (they stay inside their agent folder),
dot-named so Obsidian never shows ciphertext, and not under `.vault-agent/`,
which is derived state that may be deleted. The master key is 32 random
bytes, base64: from $VAULT_AGENT_MASTER_KEY, else the file named by
$VAULT_AGENT_MASTER_KEY_FILE, else ~/.config/vault-agent/master.key (mode
0600, refused inside the vault). A wrong key fails the GCM tag check and is
reported as such; it never yields garbage.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import secrets as _random
import stat
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import VaultAgentError
from ..vault.atomic import atomic_write

STORE_NAME = ".secrets.enc"
ENV_KEY = "VAULT_AGENT_MASTER_KEY"
ENV_KEY_FILE = "VAULT_AGENT_MASTER_KEY_FILE"
FORMAT = "vault-agent-secrets"
CIPHER = "AES-256-GCM"
_AAD = b"vault-agent secret store v1"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MIN_VALUE = 6  # shorter values could not be scrubbed from text without mangling it


class SecretError(VaultAgentError):
    """The secret store or its master key cannot be used as it is."""


def store_path(vault_root: Path) -> Path:
    return vault_root / STORE_NAME


def default_key_file(env: Mapping[str, str]) -> Path:
    if env.get(ENV_KEY_FILE):
        return Path(env[ENV_KEY_FILE]).expanduser()
    config = Path(env["XDG_CONFIG_HOME"]).expanduser() if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return config / "vault-agent" / "master.key"


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SecretError(f"the master key in {where} is not 32 bytes of base64",
                          fix="create one with: vault-agent secret init")
    return key


def load_key(vault_root: Path, env: Mapping[str, str]) -> bytes | None:
    """The master key, or None when neither the variable nor the key file exists."""
    if env.get(ENV_KEY):
        return _decode_key(env[ENV_KEY], f"${ENV_KEY}")
    path = default_key_file(env)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise SecretError("the master key file can be read by other users", path=path, fix=f"chmod 600 {path}")
    if path.resolve().is_relative_to(vault_root.resolve()):
        raise SecretError("the master key file is inside the vault, next to what it protects", path=path,
                          fix=f"move it out of the vault and set {ENV_KEY_FILE}")
    return _decode_key(path.read_text(encoding="ascii", errors="replace"), str(path))


def create_key_file(path: Path) -> bytes:
    key = _random.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(base64.b64encode(key).decode("ascii") + "\n")
    return key


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"vault-agent key id\x00" + key).hexdigest()[:12]


class SecretStore:
    """Name -> value, decrypted in memory; every change re-encrypts the whole document with a fresh nonce."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key
        self._values: dict[str, str] = self._read() if path.exists() else {}

    @classmethod
    def open(cls, vault_root: Path, env: Mapping[str, str]) -> SecretStore:
        path = store_path(vault_root)
        key = load_key(vault_root, env)
        if key is None:
            raise SecretError(f"no master key: set ${ENV_KEY} or create {default_key_file(env)}",
                              path=path, fix="run: vault-agent secret init")
        if not path.exists():
            raise SecretError("no secret store yet", path=path, fix="run: vault-agent secret init")
        return cls(path, key)

    def _read(self) -> dict[str, str]:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            doc: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            nonce = base64.b64decode(doc["nonce"])
            ciphertext = base64.b64decode(doc["ciphertext"])
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise SecretError(f"not a readable secret store ({exc})", path=self.path,
                              fix="restore it from a backup, or move it away and run: vault-agent secret init") from None
        if doc.get("format") != FORMAT or doc.get("cipher") != CIPHER:
            raise SecretError(f"unknown store format {doc.get('format')!r}/{doc.get('cipher')!r}", path=self.path)
        if doc.get("key_id") not in (None, _key_id(self._key)):
            raise SecretError("the master key does not open this store (wrong key)", path=self.path,
                              fix=f"use the key it was created with (${ENV_KEY} or the key file)")
        try:
            plain = AESGCM(self._key).decrypt(nonce, ciphertext, _AAD)
        except InvalidTag:
            raise SecretError("the master key does not open this store (wrong key, or the file was altered)",
                              path=self.path, fix=f"use the key it was created with (${ENV_KEY} or the key file)") \
                from None
        values = json.loads(plain.decode("utf-8"))
        return {str(k): str(v) for k, v in values.items()}

    def save(self) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = _random.token_bytes(12)
        plain = json.dumps(self._values, sort_keys=True).encode("utf-8")
        doc = {"format": FORMAT, "version": 1, "cipher": CIPHER, "key_id": _key_id(self._key),
               "nonce": base64.b64encode(nonce).decode("ascii"),
               "ciphertext": base64.b64encode(AESGCM(self._key).encrypt(nonce, plain, _AAD)).decode("ascii")}
        atomic_write(self.path, json.dumps(doc, indent=1) + "\n")
        os.chmod(self.path, 0o600)

    def names(self) -> list[str]:
        return sorted(self._values)

    def get(self, name: str) -> str:
        if name not in self._values:
            known = ", ".join(self.names()) or "none"
            raise SecretError(f"no secret named {name!r} (stored: {known})", path=self.path,
                              fix=f"add it with: vault-agent secret set {name}")
        return self._values[name]

    def set(self, name: str, value: str) -> None:
        if not NAME.match(name):
            raise SecretError(f"invalid secret name {name!r}", fix="use letters, digits and _, e.g. GITHUB_TOKEN")
        if len(value) < MIN_VALUE:
            raise SecretError(f"a secret value must be at least {MIN_VALUE} characters, so that it can be scrubbed "
                              "from text reliably")
        with self._locked():
            self._values[name] = value
            self.save()

    def remove(self, name: str) -> None:
        with self._locked():
            self.get(name)
            del self._values[name]
            self.save()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Re-read under a lock before changing, so two `secret set` at once both land."""
        from filelock import FileLock

        with FileLock(str(self.path.with_name(f".{self.path.name}.lock")), timeout=30):
            if self.path.exists():
                self._values = self._read()
            yield

    def values(self) -> dict[str, str]:
        return dict(self._values)


def init_store(vault_root: Path, env: Mapping[str, str]) -> tuple[Path, Path | None, bool]:
    """Create the key file (unless $VAULT_AGENT_MASTER_KEY is set) and an empty store.

    Returns (store path, key file or None when the key came from the variable, whether anything was created).
    """
    key = load_key(vault_root, env)
    key_file = None if env.get(ENV_KEY) else default_key_file(env)
    created = False
    if key is None:
        assert key_file is not None
        if key_file.resolve().is_relative_to(vault_root.resolve()):
            raise SecretError("the master key file would be inside the vault", path=key_file,
                              fix=f"point {ENV_KEY_FILE} outside the vault")
        key = create_key_file(key_file)
        created = True
    path = store_path(vault_root)
    store = SecretStore(path, key)  # opening an existing store checks the key
    if not path.exists():
        vault_root.mkdir(parents=True, exist_ok=True)
        store.save()
        created = True
    return path, key_file, created
