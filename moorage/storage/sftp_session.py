"""An SFTP session through paramiko: the half of the ``sftp`` storage kind (``sftp.py``)
that needs it, imported when a target is checked or used.

paramiko and the ``cryptography`` it loads take about 19 MiB; the server imports every
storage kind at start, and most servers never use this one (``bench/api_list.py``
prints the idle size).
"""

from __future__ import annotations

import base64
import binascii
import io
import posixpath
import socket
import stat
import uuid
from datetime import UTC, datetime
from typing import BinaryIO

import paramiko
from paramiko.pkey import UnknownKeyType

from moorage.errors import TargetError
from moorage.plugins.spec import StoredObject
from moorage.storage.keys import check_key
from moorage.storage.sftp import SftpConfig

CHUNK = 1 << 20
WINDOW = 8 << 20
"""Bytes a read keeps in flight at most (``get``)."""
READ = 32768
"""One SFTP read request (OpenSSH answers at most this much per request)."""
SCRATCH = ".moorage-partial-"
TIMEOUT = 20.0


def host_key(line: str) -> paramiko.PKey:
    """The public key of a ``type base64`` line; ``ValueError`` when it is not one."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError("expected 'type base64', a known_hosts line without the host")
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1], validate=True))
    except (binascii.Error, paramiko.SSHException, UnknownKeyType) as exc:
        raise ValueError(f"not a public key of a known type: {exc}") from exc


def private_key(text: str) -> paramiko.PKey:
    """The private key in ``text``; ``ValueError`` when it is not an unencrypted
    OpenSSH or PEM key of a type paramiko knows."""
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError, TypeError):
            continue
    raise ValueError("not an unencrypted OpenSSH or PEM private key (ed25519, ecdsa or rsa)")


class SftpStore:
    """``TargetStore`` over one SFTP session; ``root`` is the configured directory."""

    def __init__(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient, root: str) -> None:
        self._client, self._sftp, self.root = client, sftp, root

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, check_key(key))

    def _makedirs(self, path: str) -> None:
        done = "/"
        for part in path.strip("/").split("/"):
            done = posixpath.join(done, part)
            try:
                self._sftp.stat(done)
            except FileNotFoundError:
                self._sftp.mkdir(done)

    def put(self, key: str, source: BinaryIO) -> int:
        final = self._path(key)
        folder, name = posixpath.split(final)
        scratch = posixpath.join(folder, f"{SCRATCH}{name}.{uuid.uuid4().hex}")
        written = 0
        try:
            self._makedirs(folder)
            with self._sftp.open(scratch, "wb") as out:
                out.set_pipelined(True)
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            self._sftp.posix_rename(scratch, final)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self._forget(scratch)
            raise TargetError(f"cannot write {final} on the SFTP server: {exc}") from exc
        except BaseException:
            self._forget(scratch)
            raise
        return written

    def _forget(self, path: str) -> None:
        try:
            self._sftp.remove(path)
        except (OSError, paramiko.SSHException, EOFError):
            pass  # gone already, or the connection is: a scratch name is never listed

    def get(self, key: str, sink: BinaryIO) -> int:
        path = self._path(key)
        copied = 0
        try:
            with self._sftp.open(path, "rb") as src:
                size = src.stat().st_size or 0
                # Read ahead one window at a time: paramiko's prefetch() of the whole
                # file keeps every answer that arrives before the sink takes it, so a
                # slow sink (decryption on a busy machine) held up to the whole object.
                for start in range(0, size, WINDOW):
                    end = min(start + WINDOW, size)
                    chunks = [(o, min(READ, end - o)) for o in range(start, end, READ)]
                    for data in src.readv(chunks):
                        sink.write(data)
                        copied += len(data)
                src.seek(copied)
                while chunk := src.read(CHUNK):  # anything written since the stat
                    sink.write(chunk)
                    copied += len(chunk)
        except FileNotFoundError:
            raise TargetError(
                f"no object {key!r} in {self.root} on the SFTP server",
                code="target_object_missing",
            ) from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise TargetError(f"cannot read {path} on the SFTP server: {exc}") from exc
        return copied

    def delete(self, key: str) -> None:
        try:
            self._sftp.remove(self._path(key))
        except FileNotFoundError:
            return
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise TargetError(f"cannot delete {key!r} on the SFTP server: {exc}") from exc

    def list(self, prefix: str = "") -> list[StoredObject]:
        check_key(prefix, prefix=True)
        found: list[StoredObject] = []
        pending = [""]
        try:
            while pending:
                rel = pending.pop()
                try:
                    entries = self._sftp.listdir_attr(posixpath.join(self.root, rel))
                except FileNotFoundError:
                    continue
                for entry in entries:
                    key = posixpath.join(rel, entry.filename)
                    mode = entry.st_mode or 0
                    if stat.S_ISDIR(mode):
                        pending.append(key)
                    elif (
                        stat.S_ISREG(mode)
                        and not entry.filename.startswith(SCRATCH)
                        and key.startswith(prefix)
                    ):
                        at = datetime.fromtimestamp(entry.st_mtime or 0, UTC)
                        found.append(StoredObject(key, entry.st_size or 0, at))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise TargetError(f"cannot list {self.root} on the SFTP server: {exc}") from exc
        return sorted(found, key=lambda o: o.key)

    def close(self) -> None:
        self._sftp.close()
        self._client.close()


def connect(cfg: SftpConfig) -> SftpStore:
    """A session on the server ``cfg`` names, its host key pinned, its directory made.

    Raises ``TargetError``: ``target_auth_failed`` for a host key that is not the pinned
    one (or none pinned: the error quotes the key shown) and for refused credentials,
    ``target_unreachable`` for a host or port that does not answer SSH."""
    where = f"{cfg.username}@{cfg.host}:{cfg.port}"
    client = paramiko.SSHClient()
    known = cfg.host if cfg.port == 22 else f"[{cfg.host}]:{cfg.port}"
    if cfg.host_key is not None:
        client.get_host_keys().add(known, cfg.host_key.split()[0], host_key(cfg.host_key))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    secret = cfg.private_key.get_secret_value() if cfg.private_key else None
    try:
        client.connect(
            cfg.host,
            port=cfg.port,
            username=cfg.username,
            pkey=private_key(secret) if secret else None,
            password=cfg.password.get_secret_value() if cfg.password else None,
            look_for_keys=False,
            allow_agent=False,
            timeout=TIMEOUT,
            banner_timeout=TIMEOUT,
            auth_timeout=TIMEOUT,
        )
        sftp = client.open_sftp()
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise TargetError(
            f"{where} shows host key {_line(exc.key)}, not the pinned one; if the "
            "server's key really changed, set host_key to the new one",
            code="target_auth_failed",
        ) from exc
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise TargetError(
                f"{where} is not pinned: check its host key and set host_key to it "
                f"(it shows {_shown_key(cfg.host, cfg.port)})",
                code="target_auth_failed",
            ) from exc
        if isinstance(exc, paramiko.AuthenticationException):
            raise TargetError(
                f"{where} refused the credentials; check username and private_key or password",
                code="target_auth_failed",
            ) from exc
        raise TargetError(f"SSH to {where} failed: {exc}", code="target_unreachable") from exc
    except (OSError, EOFError) as exc:
        client.close()
        raise TargetError(
            f"cannot reach {where}: {exc}; check host and port",
            code="target_unreachable",
        ) from exc
    store = SftpStore(client, sftp, cfg.path)
    try:
        store._makedirs(cfg.path)
    except (OSError, paramiko.SSHException) as exc:
        store.close()
        raise TargetError(
            f"cannot make {cfg.path} on {where}: {exc}", code="target_unreachable"
        ) from exc
    return store


def _line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def _shown_key(host: str, port: int) -> str:
    """The host key a server shows, to quote in the error that asks to pin it."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            transport = paramiko.Transport(sock)
            try:
                transport.start_client(timeout=TIMEOUT)
                return _line(transport.get_remote_server_key())
            finally:
                transport.close()
    except (OSError, paramiko.SSHException, EOFError):
        return "no key: it could not be read"
