//! A TCP proxy that breaks connections on purpose, for end-to-end tests of what a device and the
//! server do when the network fails them: an answer lost after the server committed, an upload
//! cut halfway, a request that never arrived, a request that arrived twice, a network that goes
//! down and comes back.
//!
//! [`FaultProxy::start`] listens on `127.0.0.1:0` and forwards every connection to an upstream
//! address (the test server). A test routes its client through [`FaultProxy::url`] and queues
//! [`Fault`]s with [`FaultProxy::plan`]: each accepted connection takes the next fault from the
//! queue, and once the queue is empty connections pass untouched. [`FaultProxy::set_down`] takes
//! the whole network down and back up, and [`FaultProxy::settled`] waits until every connection
//! accepted so far has ended, so a test can check the server's state without sleeping.
//!
//! # Limits
//!
//! - The proxy knows nothing of HTTP: a fault applies to a connection's whole byte stream. An
//!   HTTP/1.1 client with keep-alive (reqwest's default) sends several requests on one
//!   connection, so a fault counts bytes across all of them and a cut ends all of them. For one
//!   fault per request, use a client that does not keep connections
//!   (`reqwest::Client::builder().pool_max_idle_per_host(0)`).
//! - A cut closes both sockets. The peer sees a FIN, or a reset when the proxy had not read
//!   everything the peer sent; bytes already delivered stay delivered.
//! - Faults are taken in the order the proxy accepts connections; with concurrent clients, which
//!   client gets which fault is up to the scheduler.
//! - A duplicated connection is replayed once it ends (see [`Fault::Duplicate`]): with a pooled
//!   keep-alive client that is when the client is dropped, and [`FaultProxy::settled`] waits
//!   for it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways untouched.
    Pass,
    /// Forward the request, but cut the connection once `n` bytes of the server's answer reached
    /// the client. With `n = 0` the cut comes when the first byte of the answer arrives from the
    /// server: the request was handled, the answer is lost.
    CutResponseAfter(usize),
    /// Cut the connection once `n` bytes of the client's request reached the server: a truncated
    /// upload. With `n = 0` the server sees a connection that closes without a byte.
    CutRequestAfter(usize),
    /// Close the client's connection at once, without connecting to the server: a dropped request.
    Drop,
    /// Forward normally; once the connection ends, send every byte the client sent again on a
    /// fresh connection to the server, and discard that answer: a duplicated request.
    ///
    /// The replay keeps the rhythm of the original: the client's bytes are sent in the bursts
    /// that the server answered, and after each burst the replay waits for the first bytes of an
    /// answer before sending the next; after the last it closes. For an HTTP server that answers
    /// only once a handler finished, every replayed request has then been handled, provided each
    /// answer comes in one read (the rest of a larger answer can be taken for the start of the
    /// next one). The replay never half-closes: hyper, under `axum::serve`, drops a request's
    /// handler when the client half-closes before the answer. The replay is not made when the
    /// network went down meanwhile.
    Duplicate,
}

/// A proxy on a local port in front of one upstream address; see the module documentation.
/// Dropping it stops accepting and cuts every open connection.
pub struct FaultProxy {
    /// Where clients connect.
    addr: SocketAddr,
    /// What the accepting task and every connection task read and update.
    shared: Arc<Shared>,
    /// The accepting task, aborted on drop so the port closes with the proxy.
    accepting: JoinHandle<()>,
}

/// The state the proxy shares with its tasks.
struct Shared {
    /// The server every connection is forwarded to.
    upstream: SocketAddr,
    /// Faults for the next connections, taken one per accepted connection.
    plan: Mutex<VecDeque<Fault>>,
    /// Connections accepted so far, including those closed because the network was down.
    connections: AtomicUsize,
    /// Whether the network is down, watched by every connection so that an outage cuts it.
    network: watch::Sender<Network>,
    /// Connections (with their replays) not ended yet, watched by [`FaultProxy::settled`].
    open: watch::Sender<usize>,
}

/// The state of the proxy's network.
#[derive(Clone, Copy, Debug, Default)]
struct Network {
    down: bool,
    /// Outages so far: a connection is cut when this moves past the value it was accepted under,
    /// even if the network came back before the connection's task looked.
    outages: u64,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(VecDeque::new()),
            connections: AtomicUsize::new(0),
            network: watch::Sender::new(Network::default()),
            open: watch::Sender::new(0),
        });
        let accepting = tokio::spawn(accept(listener, shared.clone()));
        FaultProxy { addr, shared, accepting }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's base URL, `http://127.0.0.1:port`, in the form of `TestServer::base`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next connections, after those already queued. Each accepted
    /// connection takes one, in order; when the queue is empty, connections pass untouched.
    pub fn plan(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.plan.lock().unwrap().extend(faults);
    }

    /// Connections accepted so far, including those closed because the network was down.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Takes the network down or brings it back, on the same port. Going down cuts every open
    /// connection (and any replay in progress); while down, each new connection is accepted and
    /// closed at once, without taking a fault from the plan.
    pub fn set_down(&self, down: bool) {
        self.shared.network.send_modify(|network| {
            if down && !network.down {
                network.outages += 1;
            }
            network.down = down;
        });
    }

    /// Waits until every connection accepted so far, with its replay, has ended. A connection a
    /// client opened but the proxy has not accepted yet is not waited for; one that a pooled
    /// client keeps open is, so drop such a client first.
    pub async fn settled(&self) {
        let mut open = self.shared.open.subscribe();
        // The sender lives in `shared`, which `self` keeps alive: this cannot fail.
        let _ = open.wait_for(|open| *open == 0).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.set_down(true);
    }
}

/// Accepts connections until the proxy is dropped, giving each the next fault of the plan.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        // An accept error concerns one connection that did not make it (or a transient lack of
        // file descriptors); the listener itself stays usable.
        let Ok((client, _)) = listener.accept().await else { continue };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let network = shared.network.subscribe();
        let accepted_under = *network.borrow();
        if accepted_under.down {
            drop(client);
            continue;
        }
        let fault = shared.plan.lock().unwrap().pop_front().unwrap_or(Fault::Pass);
        shared.open.send_modify(|open| *open += 1);
        let open = OpenConnection(shared.clone());
        let upstream = shared.upstream;
        tokio::spawn(async move {
            let _open = open;
            let mut network = network;
            tokio::select! {
                () = serve(client, upstream, fault) => {}
                _ = network.wait_for(|now| now.outages != accepted_under.outages) => {}
            }
        });
    }
}

/// Counts a connection as open until its task ends, however it ends.
struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.send_modify(|open| *open -= 1);
    }
}

/// Serves one connection under one fault. Every socket is closed when this returns or is dropped.
async fn serve(client: TcpStream, upstream: SocketAddr, fault: Fault) {
    if fault == Fault::Drop {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (request_limit, answer_limit) = match fault {
        Fault::CutRequestAfter(n) => (Some(n), None),
        Fault::CutResponseAfter(n) => (None, Some(n)),
        Fault::Pass | Fault::Drop | Fault::Duplicate => (None, None),
    };
    let transcript = (fault == Fault::Duplicate).then(|| Mutex::new(Transcript::default()));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let request = forward(client_read, server_write, request_limit, transcript.as_ref(), Direction::Request);
    let answer = forward(server_read, client_write, answer_limit, transcript.as_ref(), Direction::Answer);
    // Both sockets are closed when this returns, before any replay starts.
    until_both_end(request, answer).await;
    if let Some(transcript) = transcript {
        replay(upstream, transcript.into_inner().unwrap().bursts).await;
    }
}

/// Which way bytes go through a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Request,
    Answer,
}

/// How one direction of a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The sender closed its side; the close was passed on.
    Closed,
    /// A fault's limit was reached or a socket failed: the whole connection must be cut.
    Cut,
}

/// Runs both directions until both closed, or until one is cut; then drops both, which closes
/// every socket of the connection.
async fn until_both_end(request: impl Future<Output = Ended>, answer: impl Future<Output = Ended>) {
    tokio::pin!(request, answer);
    let (mut request_open, mut answer_open) = (true, true);
    while request_open || answer_open {
        let ended = tokio::select! {
            ended = &mut request, if request_open => { request_open = false; ended }
            ended = &mut answer, if answer_open => { answer_open = false; ended }
        };
        if ended == Ended::Cut {
            return;
        }
    }
}

/// Copies bytes one way until the sender closes, passing at most `limit` bytes: once `limit`
/// bytes are through (for a limit of 0, once the first byte arrives), the direction is cut.
async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    limit: Option<usize>,
    transcript: Option<&Mutex<Transcript>>,
    direction: Direction,
) -> Ended {
    let mut buffer = vec![0; 16 * 1024];
    let mut passed = 0;
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) => {
                // Half-close: the receiver learns the sender is done, the other way goes on.
                let _ = to.shutdown().await;
                return Ended::Closed;
            }
            Ok(read) => read,
            Err(_) => return Ended::Cut,
        };
        if let Some(transcript) = transcript {
            transcript.lock().unwrap().record(direction, &buffer[..read]);
        }
        let allowed = limit.map_or(read, |limit| read.min(limit - passed));
        if to.write_all(&buffer[..allowed]).await.is_err() {
            return Ended::Cut;
        }
        passed += allowed;
        if limit == Some(passed) {
            // A FIN after the allowed bytes, so that they are not lost in a reset.
            let _ = to.shutdown().await;
            return Ended::Cut;
        }
    }
}

/// What a client sent on a connection to be duplicated, in the bursts the server answered.
#[derive(Debug, Default)]
struct Transcript {
    bursts: Vec<Burst>,
}

/// Bytes the client sent before the server's next answer.
#[derive(Debug, Default)]
struct Burst {
    request: Vec<u8>,
    /// Whether the server started answering after this burst.
    answered: bool,
}

impl Transcript {
    /// Called before the bytes are forwarded, so that a client's bytes sent after reading an
    /// answer always start a new burst.
    fn record(&mut self, direction: Direction, bytes: &[u8]) {
        match direction {
            Direction::Request => match self.bursts.last_mut() {
                Some(burst) if !burst.answered => burst.request.extend_from_slice(bytes),
                _ => self.bursts.push(Burst { request: bytes.to_vec(), answered: false }),
            },
            Direction::Answer => {
                if let Some(burst) = self.bursts.last_mut() {
                    burst.answered = true;
                }
            }
        }
    }
}

/// Sends the bursts again on a fresh connection, waiting for the start of an answer after each
/// one that was answered, and discards the answers.
async fn replay(upstream: SocketAddr, bursts: Vec<Burst>) {
    if bursts.is_empty() {
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let mut discarded = vec![0; 16 * 1024];
    for burst in bursts {
        if server.write_all(&burst.request).await.is_err() {
            return;
        }
        if burst.answered && !matches!(server.read(&mut discarded).await, Ok(read) if read > 0) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use tokio::sync::mpsc;

    const REQUEST: &[u8] = b"POST one record";
    const ANSWER: &[u8] = b"stored";

    /// Waits for `what`, failing the test if it has not happened after 30 s. A broken proxy
    /// shows as a hang (a close or an answer that never comes); this bound only turns the hang
    /// into a failure, it says nothing about how fast the proxy is.
    async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), future).await.unwrap_or_else(|_| panic!("{what}: never happened"))
    }

    /// A server that answers [`ANSWER`] to every [`REQUEST`]-sized block it reads, and reports
    /// what it received on a connection when that connection ends.
    struct Upstream {
        addr: SocketAddr,
        served: mpsc::UnboundedReceiver<Served>,
        connections: Arc<AtomicUsize>,
    }

    /// What the upstream received on one connection.
    #[derive(Debug)]
    struct Served {
        received: Vec<u8>,
        /// The most requests that had arrived unanswered at once: more than one means the
        /// peer sent a request before the answer to the one before.
        most_unanswered: usize,
    }

    impl Upstream {
        async fn start() -> Upstream {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (report, served) = mpsc::unbounded_channel();
            let connections = Arc::new(AtomicUsize::new(0));
            let counted = connections.clone();
            tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(Self::serve(stream, report.clone()));
                }
            });
            Upstream { addr, served, connections }
        }

        async fn serve(mut stream: TcpStream, report: mpsc::UnboundedSender<Served>) {
            let mut received = Vec::new();
            let mut buffer = [0; 64];
            let (mut answered, mut most_unanswered) = (0, 0);
            // A reset ends the connection like a close: what arrived before it is reported.
            while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                received.extend_from_slice(&buffer[..read]);
                most_unanswered = most_unanswered.max(received.len() / REQUEST.len() - answered);
                while received.len() / REQUEST.len() > answered {
                    answered += 1;
                    if stream.write_all(ANSWER).await.is_err() {
                        break;
                    }
                }
            }
            let _ = report.send(Served { received, most_unanswered });
        }

        /// What the next connection to end received.
        async fn next_connection(&mut self) -> Served {
            within("a connection to the upstream ends", self.served.recv()).await.expect("the upstream is running")
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    /// Everything the peer sends until it closes or resets the connection.
    async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
        within("the proxy closes the client's connection", async {
            let mut received = Vec::new();
            let mut buffer = [0; 64];
            while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                received.extend_from_slice(&buffer[..read]);
            }
            received
        })
        .await
    }

    /// Sends one request and reads its whole answer, leaving the connection open.
    async fn exchange(stream: &mut TcpStream) -> Vec<u8> {
        stream.write_all(REQUEST).await.unwrap();
        let mut answer = vec![0; ANSWER.len()];
        within("an answer", stream.read_exact(&mut answer)).await.unwrap();
        answer
    }

    /// Sends one request on a connection under `fault`, reads until the proxy closes it, and
    /// checks what the client and the upstream each received.
    async fn check_cut(fault: Fault, client_receives: &[u8], upstream_receives: &[u8]) {
        let mut upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.addr).await;
        proxy.plan([fault]);
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        // The proxy may cut before the request is written whole.
        let _ = client.write_all(REQUEST).await;
        assert_eq!(read_until_closed(&mut client).await, client_receives, "the client, under {fault:?}");
        assert_eq!(upstream.next_connection().await.received, upstream_receives, "the upstream, under {fault:?}");
        within("the proxy settles", proxy.settled()).await;
        assert_eq!(upstream.connections(), 1, "{fault:?}");
    }

    #[tokio::test]
    async fn pass_forwards_both_ways() {
        let mut upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.addr).await;
        proxy.plan([Fault::Pass]);
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(exchange(&mut client).await, ANSWER);
        assert_eq!(exchange(&mut client).await, ANSWER);
        // The client's close reaches the upstream, and the upstream's close comes back.
        client.shutdown().await.unwrap();
        assert_eq!(read_until_closed(&mut client).await, b"");
        assert_eq!(upstream.next_connection().await.received, [REQUEST, REQUEST].concat());
        assert_eq!(proxy.connections(), 1);
    }

    #[tokio::test]
    async fn cut_response_after_delivers_exactly_n_bytes_of_the_answer() {
        for n in [0, 1, 4, ANSWER.len()] {
            check_cut(Fault::CutResponseAfter(n), &ANSWER[..n], REQUEST).await;
        }
    }

    #[tokio::test]
    async fn cut_request_after_delivers_exactly_n_bytes_of_the_request() {
        for n in [0, 1, 7, REQUEST.len() - 1] {
            check_cut(Fault::CutRequestAfter(n), b"", &REQUEST[..n]).await;
        }
    }

    #[tokio::test]
    async fn drop_closes_the_connection_without_reaching_the_upstream() {
        let mut upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.addr).await;
        proxy.plan([Fault::Drop]);
        let mut dropped = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = dropped.write_all(b"lost").await;
        assert_eq!(read_until_closed(&mut dropped).await, b"");
        within("the proxy settles", proxy.settled()).await;
        assert_eq!(upstream.connections(), 0);

        let mut passed = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(exchange(&mut passed).await, ANSWER);
        drop(passed);
        assert_eq!(upstream.next_connection().await.received, REQUEST);
        assert_eq!(upstream.connections(), 1);
        assert_eq!(proxy.connections(), 2);
    }

    #[tokio::test]
    async fn duplicate_replays_the_requests_on_a_fresh_connection() {
        let mut upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.addr).await;
        proxy.plan([Fault::Duplicate]);
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(exchange(&mut client).await, ANSWER);
        assert_eq!(exchange(&mut client).await, ANSWER);
        client.shutdown().await.unwrap();
        // The replay's answers are discarded: the client gets its two answers and nothing more.
        assert_eq!(read_until_closed(&mut client).await, b"");
        within("the proxy settles", proxy.settled()).await;
        let both = [REQUEST, REQUEST].concat();
        for connection in ["the original", "the replay"] {
            let served = upstream.next_connection().await;
            assert_eq!(served.received, both, "{connection}");
            assert_eq!(served.most_unanswered, 1, "{connection} waits for each answer");
        }
        assert_eq!(upstream.connections(), 2);
        assert_eq!(proxy.connections(), 1);
    }

    #[tokio::test]
    async fn connections_pass_once_the_plan_is_exhausted() {
        let mut upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.addr).await;
        proxy.plan([Fault::CutResponseAfter(0)]);
        proxy.plan([Fault::Drop]);
        let expected: [&[u8]; 4] = [b"", b"", ANSWER, ANSWER];
        for (connection, answer) in expected.into_iter().enumerate() {
            let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
            let _ = client.write_all(REQUEST).await;
            if answer.is_empty() {
                assert_eq!(read_until_closed(&mut client).await, answer, "connection {connection}");
            } else {
                let mut received = vec![0; answer.len()];
                within("an answer", client.read_exact(&mut received)).await.unwrap();
                assert_eq!(received, answer, "connection {connection}");
            }
        }
        assert_eq!(proxy.connections(), 4);
        // The dropped connection never reached the upstream.
        within("the proxy settles", proxy.settled()).await;
        for _ in 0..3 {
            assert_eq!(upstream.next_connection().await.received, REQUEST);
        }
        assert_eq!(upstream.connections(), 3);
    }

    #[tokio::test]
    async fn going_down_cuts_open_connections_and_refuses_new_ones_until_back() {
        let mut upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.addr).await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(exchange(&mut open).await, ANSWER);

        proxy.set_down(true);
        assert_eq!(read_until_closed(&mut open).await, b"", "an open connection is cut");
        assert_eq!(upstream.next_connection().await.received, REQUEST);
        // Planned while down: the refused connection below must not take it.
        proxy.plan([Fault::CutResponseAfter(0)]);
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = refused.write_all(REQUEST).await;
        assert_eq!(read_until_closed(&mut refused).await, b"", "a new connection is closed");
        within("the proxy settles", proxy.settled()).await;
        assert_eq!(upstream.connections(), 1);

        proxy.set_down(false);
        let mut faulted = TcpStream::connect(proxy.addr()).await.unwrap();
        faulted.write_all(REQUEST).await.unwrap();
        assert_eq!(read_until_closed(&mut faulted).await, b"", "the planned fault, on the same port");
        let mut passed = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(exchange(&mut passed).await, ANSWER);
        assert_eq!(proxy.connections(), 4);
        assert_eq!(upstream.connections(), 3);
    }

    #[tokio::test]
    async fn dropping_the_proxy_cuts_its_connections() {
        let upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.addr).await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(exchange(&mut open).await, ANSWER);
        drop(proxy);
        assert_eq!(read_until_closed(&mut open).await, b"");
    }
}
