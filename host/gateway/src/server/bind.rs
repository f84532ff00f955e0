use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::ListenerConfig;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("listener `{listener}`: cannot listen on {address}: {reason}")]
    Listen { listener: String, address: SocketAddr, reason: std::io::Error },
    #[error("cannot start a worker thread: {0}")]
    Worker(String),
    #[error("{0}")]
    Plugins(#[from] crate::plugins::PluginsError),
}

pub struct Bound {
    pub address: SocketAddr,
    /// One socket per worker; all share the address through SO_REUSEPORT.
    pub sockets: Vec<std::net::TcpListener>,
}

pub fn bind_all(listeners: &[ListenerConfig], workers: usize) -> Result<Vec<Bound>, BindError> {
    listeners
        .iter()
        .map(|l| {
            let fail = |reason| BindError::Listen { listener: l.name.clone(), address: l.address, reason };
            let first = socket(l.address, workers > 1).map_err(fail)?;
            let address = first.local_addr().map_err(fail)?;
            let mut sockets = vec![first];
            for _ in 1..workers {
                sockets.push(socket(address, true).map_err(fail)?);
            }
            Ok(Bound { address, sockets })
        })
        .collect()
}

fn socket(address: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}
