#!/usr/bin/env bash
# Start a throwaway SFTP server for the off-site tests: Debian's openssh-server as its own
# sshd on 127.0.0.1:52222 (never the machine's sshd), with a throwaway host key and a test
# user whose only login is a throwaway key, chrooted to nothing but its home. Installs
# openssh-server when missing. Idempotent; prints the directory holding `host_key.pub`
# (the server's key), `client_key` (the user's private key) and `env` (host, port, user).
set -euo pipefail
PORT=52222
DIR=/tmp/moorage-test-sftp
USER_NAME=moorage-sftp

if [ ! -x /usr/sbin/sshd ]; then
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends openssh-server; } >&2
  # The package enables the machine's own sshd; these tests never need it.
  { systemctl disable --now ssh 2>/dev/null || service ssh stop 2>/dev/null || true; } >&2
fi
mkdir -p "$DIR" /run/sshd
chmod 755 "$DIR"
if ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd --system --create-home --home-dir "$DIR/home" --shell /usr/sbin/nologin "$USER_NAME"
fi
install -d -o "$USER_NAME" -m 700 "$DIR/home" "$DIR/home/.ssh"
[ -f "$DIR/host_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$DIR/host_key" >/dev/null
[ -f "$DIR/client_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$DIR/client_key" >/dev/null
install -o "$USER_NAME" -m 600 "$DIR/client_key.pub" "$DIR/home/.ssh/authorized_keys"
# The test user may also log in with a password (the password form of the config).
echo "$USER_NAME:sftp-test-password" | chpasswd
cat > "$DIR/sshd_config" <<CONF
ListenAddress 127.0.0.1:$PORT
HostKey $DIR/host_key
PidFile $DIR/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $USER_NAME
UsePAM no
Subsystem sftp internal-sftp
ForceCommand internal-sftp
AllowTcpForwarding no
X11Forwarding no
MaxStartups 50:30:100
CONF
if ! { [ -f "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null; }; then
  /usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log"
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
  done
fi
printf 'host=127.0.0.1\nport=%s\nuser=%s\npassword=sftp-test-password\n' "$PORT" "$USER_NAME" \
  > "$DIR/env"
echo "$DIR"
