//! dbgroups' own connections to a unix socket on a host: a socket on this
//! machine whose every connection is relayed, over the host's ssh
//! connection, to the host's socket by a small program run there as root.
//!
//! Why not OpenSSH's own socket forwarding (`-L local.sock:remote.sock`):
//! sshd connects to the remote socket as the ssh user, and a server's
//! socket lives in its 0700 directory, owned by the service user. Root
//! reaches it whether the ssh user is root or goes through `sudo -n`, so
//! the relay runs as root. Some engines' administrator exists only on the
//! socket (a MySQL-family server's `root@localhost`: never over TCP), which
//! is why dbgroups does not use a TCP forward for it.
//!
//! The program is Perl from `perl-base`, which Debian and Ubuntu mark
//! essential (always installed): a socket client copying both ways, with
//! no dependency to install.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::mux::Connection;
use super::script;
use crate::error::EngineError;

/// Copies stdin to the socket named by its argument and the socket to
/// stdout. The client's end of input half-closes the socket (the server
/// sees the end of the request); the server closing ends the relay.
const RELAY_PERL: &str = r#"use IO::Socket::UNIX; use IO::Select;
my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "cannot connect to $ARGV[0]: $!\n";
binmode STDIN; binmode STDOUT; binmode $s;
my $select = IO::Select->new(\*STDIN, $s);
my $buffer;
while ($select->count) {
  for my $from ($select->can_read) {
    my $from_server = fileno($from) == fileno($s);
    my $n = sysread($from, $buffer, 65536);
    if (!$n) {
      exit 0 if $from_server;
      shutdown($s, 1); $select->remove($from); next;
    }
    my $to = $from_server ? \*STDOUT : $s;
    my $done = 0;
    while ($done < $n) {
      my $wrote = syswrite($to, $buffer, $n - $done, $done);
      die "write: $!\n" unless defined $wrote;
      $done += $wrote;
    }
  }
}
"#;

/// The relays of one host, each ended when this is dropped.
#[derive(Debug, Default)]
pub(super) struct Relays {
    /// The remote socket → its local socket and the task accepting there.
    started: tokio::sync::Mutex<Vec<(PathBuf, PathBuf, tokio::task::AbortHandle)>>,
}

impl Relays {
    /// The local socket relayed to `remote` on the host, started on first
    /// use. `local_dir` is a 0700 directory of this process's.
    pub(super) async fn socket_for(
        &self,
        connection: &Arc<Connection>,
        via_sudo: bool,
        local_dir: &Path,
        remote: &Path,
    ) -> Result<PathBuf, EngineError> {
        let mut started = self.started.lock().await;
        if let Some((_, local, _)) = started.iter().find(|(r, _, _)| r == remote) {
            return Ok(local.clone());
        }
        let command = format!(
            "exec perl -e {} {}",
            script::quote(RELAY_PERL)?,
            script::quote_path(remote)?
        );
        let line = script::as_root(&command, via_sudo)?;
        let local = local_dir.join(format!("relay-{}.sock", started.len()));
        let _ = std::fs::remove_file(&local);
        let listener =
            tokio::net::UnixListener::bind(&local).map_err(|source| EngineError::Io {
                action: "listen on",
                path: local.clone(),
                source,
            })?;
        let connection = Arc::clone(connection);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = Arc::clone(&connection);
                let line = line.clone();
                // A failed session closes the client's stream, which the
                // client reports as a lost connection to its server.
                tokio::spawn(async move { connection.pipe(&line, stream).await });
            }
        });
        started.push((remote.to_path_buf(), local.clone(), task.abort_handle()));
        Ok(local)
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        for (_, _, task) in self.started.get_mut().drain(..) {
            task.abort();
        }
    }
}
