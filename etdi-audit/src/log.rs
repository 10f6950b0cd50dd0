//! The audit log: a bounded queue in front of a dedicated writer thread
//! that owns the sinks, with backpressure, optional lossy mode, and group
//! commit.
//!
//! Producers (any thread, sync or async) canonicalise their event, then
//! append it to the queue under a mutex. The writer takes the whole queue
//! at once, writes every event to every sink, and syncs according to the
//! [`Durability`] policy. Each queued event has a number; the writer
//! publishes "everything up to N is durable", and a caller waiting for
//! durability is released when N reaches its event.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use etdi_core::AuditEvent;

use crate::error::{AuditError, OpenError, SinkError};
use crate::event::{ParamsPolicy, events_dropped, new_event_id};
use crate::record::EncodedEvent;
use crate::sink::{FanOut, Sink};

/// When written events are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// fsync after every event. Simple and slow (a few thousand events per
    /// second on ordinary disks).
    EveryEvent,
    /// Group commit (the default): events are written as they come and
    /// synced together. A sync happens as soon as a caller is waiting for
    /// durability and the writer has written everything queued (so callers
    /// that arrive during a sync share the next one), and at the latest
    /// `interval` after the first unsynced event, so events logged without
    /// waiting are durable within `interval` plus the linger (and the time
    /// to write them). An idle writer woken by an event nobody waits for
    /// lingers (default 200 µs, [`AuditLogBuilder::linger`]) or until 64
    /// events are queued, to gather a batch, so a producer does not pay two
    /// context switches per event; a caller waiting for durability wakes
    /// it at once.
    GroupCommit {
        /// Longest time an event stays unsynced.
        interval: Duration,
    },
    /// Never fsync; hand buffered output to the operating system within
    /// 5 ms, or at once when a caller waits. Events handed over survive a
    /// crash of this process but not of the machine; a caller "waiting for
    /// durability" is released after the hand-over.
    None,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::GroupCommit {
            interval: Duration::from_millis(5),
        }
    }
}

/// What happens when the queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// The caller waits for space (the default): nothing is ever dropped.
    #[default]
    Block,
    /// Opt-in lossy mode: the event is dropped, the caller gets
    /// [`AuditError::Dropped`], and the writer records an `events_dropped`
    /// event with the number dropped since the last such event.
    DropNewest,
}

/// Counters for monitoring (monotonic since the log was built).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted into the queue.
    pub enqueued: u64,
    /// Events written to every sink.
    pub written: u64,
    /// Events dropped in lossy mode.
    pub dropped: u64,
    /// Times a producer found the queue full and had to wait.
    pub producer_waits: u64,
    /// Sync (or, with `Durability::None`, flush) rounds.
    pub syncs: u64,
}

type TraceIdSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// The default trace id: the id of the current `tracing` span, as 16 hex
/// digits, when there is one. Applications using OpenTelemetry should set
/// a source returning the W3C trace id instead
/// ([`AuditLogBuilder::trace_id_source`]).
pub fn current_span_id() -> Option<String> {
    tracing::Span::current()
        .id()
        .map(|id| format!("{:016x}", id.into_u64()))
}

/// Configures an [`AuditLog`].
pub struct AuditLogBuilder {
    sinks: FanOut,
    capacity: usize,
    overflow: Overflow,
    durability: Durability,
    params: ParamsPolicy,
    trace_id: Option<TraceIdSource>,
    linger: Duration,
}

impl AuditLogBuilder {
    /// Adds a sink; events go to every sink, in the order added.
    pub fn sink(mut self, sink: impl Sink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Queue capacity in events (default 8192).
    pub fn capacity(mut self, events: usize) -> Self {
        self.capacity = events.max(1);
        self
    }

    /// Behaviour when the queue is full (default [`Overflow::Block`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Durability policy (default group commit, 5 ms).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long an idle writer woken by an event nobody waits for waits
    /// for more before writing (default 200 µs; at most 5 ms). A waiting
    /// durable caller or 64 queued events end the wait early.
    ///
    /// The default suits a producer that logs in bursts (one thread
    /// logging flat out: ~500k events/s here). A server that logs a few
    /// events per request at a steady rate does better with about 1 ms:
    /// etdi-server's HTTP bench measured ~28 µs of CPU per event with
    /// 200 µs (a writer wake-up, a timer and a `write` for every one or two
    /// events) and ~11 µs with 1 ms, while a single flat-out producer
    /// drops to ~300k events/s with 1 ms. Non-durable events reach the
    /// sinks up to this much later; durable ones are not delayed.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger.min(Duration::from_millis(5));
        self
    }

    /// Whether invocation events record arguments (default: no).
    pub fn params(mut self, params: ParamsPolicy) -> Self {
        self.params = params;
        self
    }

    /// Where the trace id of an event without one comes from (default
    /// [`current_span_id`]).
    pub fn trace_id_source(
        mut self,
        f: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.trace_id = Some(Arc::new(f));
        self
    }

    /// Starts the writer thread. Events the sinks ask to record about
    /// themselves (a repaired tail) are written and synced before this
    /// returns.
    pub fn build(mut self) -> Result<AuditLog, OpenError> {
        if self.sinks.is_empty() {
            return Err(OpenError::Config(
                "an audit log needs at least one sink".into(),
            ));
        }
        let notices = self.sinks.take_notices();
        let mut written = 0;
        for n in notices {
            let mut n = n;
            if n.id.is_empty() {
                n.id = new_event_id();
            }
            let enc = EncodedEvent::new(n).map_err(|e| OpenError::Config(e.to_string()))?;
            self.sinks.write(&enc)?;
            written += 1;
        }
        if written > 0 {
            self.sinks.sync()?;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                items: Vec::with_capacity(self.capacity.min(1 << 16)),
                capacity: self.capacity,
                next_no: 1,
                durable_no: 0,
                want_durable: 0,
                closed: false,
                writer_done: false,
                failed: None,
                pending_dropped: 0,
                writer_waiting: false,
                lingering: false,
                space_waiters: 0,
                durable_waiters: 0,
                space_wakers: Vec::new(),
                durable_wakers: Vec::new(),
                stats: Stats {
                    written,
                    ..Stats::default()
                },
            }),
            work: Condvar::new(),
            space: Condvar::new(),
            durable: Condvar::new(),
        });
        let writer = Writer {
            shared: shared.clone(),
            sinks: self.sinks,
            durability: self.durability,
            written,
            linger: self.linger,
        };
        let handle = std::thread::Builder::new()
            .name("etdi-audit-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| {
                OpenError::io(
                    "spawn writer thread for",
                    std::path::Path::new("audit log"),
                    e,
                )
            })?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                shared,
                overflow: self.overflow,
                params: self.params,
                trace_id: self.trace_id.unwrap_or_else(|| Arc::new(current_span_id)),
                handle: Mutex::new(Some(handle)),
            }),
        })
    }
}

struct Item {
    no: u64,
    event: EncodedEvent,
}

struct State {
    items: Vec<Item>,
    capacity: usize,
    /// Number the next queued event gets (starts at 1).
    next_no: u64,
    /// Every event numbered up to this is durable per the policy.
    durable_no: u64,
    /// Highest event number some caller waits on.
    want_durable: u64,
    closed: bool,
    writer_done: bool,
    failed: Option<Arc<SinkError>>,
    pending_dropped: u64,
    writer_waiting: bool,
    /// The writer woke for a few events and waits briefly for more.
    lingering: bool,
    space_waiters: usize,
    durable_waiters: usize,
    space_wakers: Vec<Waker>,
    durable_wakers: Vec<Waker>,
    stats: Stats,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    space: Condvar,
    durable: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding this lock (no user code runs under
        // it), so poisoning can only follow an allocation failure; the state
        // is still consistent then.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// The event travels back to the caller by value when the queue is full;
// boxing it would cost an allocation on every full-queue retry.
#[allow(clippy::large_enum_variant)]
enum Push {
    Queued(u64),
    Full(EncodedEvent),
}

impl State {
    fn check_open(&self) -> Result<(), AuditError> {
        if let Some(f) = &self.failed {
            return Err(AuditError::Failed(f.clone()));
        }
        if self.closed {
            return Err(AuditError::Closed);
        }
        Ok(())
    }

    fn try_push(&mut self, event: EncodedEvent, shared: &Shared) -> Result<Push, AuditError> {
        self.check_open()?;
        if self.items.len() >= self.capacity {
            return Ok(Push::Full(event));
        }
        let no = self.next_no;
        self.next_no += 1;
        self.items.push(Item { no, event });
        self.stats.enqueued += 1;
        // While the writer lingers to gather a batch, wake it only once the
        // batch is worth writing; a durable request wakes it at once.
        if self.writer_waiting
            && (!self.lingering || self.items.len() >= LINGER_BATCH.min(self.capacity))
        {
            shared.work.notify_one();
        }
        Ok(Push::Queued(no))
    }

    fn drop_one(&mut self, shared: &Shared) -> AuditError {
        self.pending_dropped += 1;
        self.stats.dropped += 1;
        if self.writer_waiting {
            shared.work.notify_one();
        }
        AuditError::Dropped
    }

    /// `Ok(true)` when event `no` is durable.
    fn is_durable(&self, no: u64) -> Result<bool, AuditError> {
        if self.durable_no >= no {
            return Ok(true);
        }
        if let Some(f) = &self.failed {
            return Err(AuditError::Failed(f.clone()));
        }
        if self.writer_done {
            return Err(AuditError::Closed);
        }
        Ok(false)
    }

    fn want(&mut self, no: u64, shared: &Shared) {
        if self.want_durable < no {
            self.want_durable = no;
            if self.writer_waiting {
                shared.work.notify_one();
            }
        }
    }
}

struct Inner {
    shared: Arc<Shared>,
    overflow: Overflow,
    params: ParamsPolicy,
    trace_id: TraceIdSource,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn close_and_join(&self) -> Result<(), AuditError> {
        {
            let mut s = self.shared.lock();
            s.closed = true;
            self.shared.work.notify_one();
            self.shared.space.notify_all();
            s.space_wakers.drain(..).for_each(Waker::wake);
        }
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            // The writer catches nothing: a panic in a sink would surface
            // here and is reported as a failure instead of propagating.
            if h.join().is_err() {
                let mut s = self.shared.lock();
                s.failed.get_or_insert_with(|| {
                    Arc::new(SinkError::new("writer", "the writer thread panicked"))
                });
                s.writer_done = true;
            }
        }
        let s = self.shared.lock();
        match &s.failed {
            Some(f) => Err(AuditError::Failed(f.clone())),
            None => Ok(()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: drain, sync and close the sinks so
        // nothing accepted is lost on an orderly exit.
        let _ = self.close_and_join();
    }
}

/// The audit log handle: cheap to clone, `Send + Sync`, usable from sync
/// and async code. See the crate docs for the threading model.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Starts configuring a log.
    pub fn builder() -> AuditLogBuilder {
        AuditLogBuilder {
            sinks: FanOut::new(),
            capacity: 8192,
            overflow: Overflow::Block,
            durability: Durability::default(),
            params: ParamsPolicy::default(),
            trace_id: None,
            linger: LINGER,
        }
    }

    /// The parameter policy to pass to [`crate::event::invocation_requested`].
    pub fn params(&self) -> &ParamsPolicy {
        &self.inner.params
    }

    fn prepare(&self, event: impl Into<AuditEvent>) -> Result<EncodedEvent, AuditError> {
        let mut event = event.into();
        if event.id.is_empty() {
            event.id = new_event_id();
        }
        if event.trace_id.is_none() {
            event.trace_id = (self.inner.trace_id)();
        }
        EncodedEvent::new(event)
    }

    /// Queues an event. With [`Overflow::Block`] (the default) this waits
    /// while the queue is full, so it can block; async code should prefer
    /// [`AuditLog::log_async`]. Returns once the event is queued, not
    /// written: use [`AuditLog::log_durable`] to wait for durability.
    pub fn log(&self, event: impl Into<AuditEvent>) -> Result<(), AuditError> {
        self.enqueue(self.prepare(event)?, None).map(|_| ())
    }

    /// Like [`AuditLog::log`], waiting at most `timeout` for queue space.
    pub fn log_timeout(
        &self,
        event: impl Into<AuditEvent>,
        timeout: Duration,
    ) -> Result<(), AuditError> {
        let deadline = Instant::now() + timeout;
        self.enqueue(self.prepare(event)?, Some(deadline))
            .map(|_| ())
    }

    /// Queues an event only if there is space now; never waits.
    pub fn try_log(&self, event: impl Into<AuditEvent>) -> Result<(), AuditError> {
        let enc = self.prepare(event)?;
        let shared = &self.inner.shared;
        let mut s = shared.lock();
        match s.try_push(enc, shared)? {
            Push::Queued(_) => Ok(()),
            Push::Full(_) if self.inner.overflow == Overflow::DropNewest => Err(s.drop_one(shared)),
            Push::Full(_) => Err(AuditError::Full),
        }
    }

    /// Queues an event and waits until it is durable per the policy (with
    /// group commit: until the batch holding it was synced).
    pub fn log_durable(&self, event: impl Into<AuditEvent>) -> Result<(), AuditError> {
        let no = self.enqueue(self.prepare(event)?, None)?;
        self.wait_durable(no, None)
    }

    /// [`AuditLog::log_durable`] with one deadline for queueing and syncing.
    pub fn log_durable_timeout(
        &self,
        event: impl Into<AuditEvent>,
        timeout: Duration,
    ) -> Result<(), AuditError> {
        let deadline = Instant::now() + timeout;
        let no = self.enqueue(self.prepare(event)?, Some(deadline))?;
        self.wait_durable(no, Some(deadline))
    }

    /// Async [`AuditLog::log`]: waits for queue space without blocking the
    /// executor thread.
    pub fn log_async(&self, event: impl Into<AuditEvent>) -> LogFuture<'_> {
        LogFuture {
            log: self,
            state: match self.prepare(event) {
                Ok(e) => FutState::Queue(Some(e)),
                Err(e) => FutState::Error(Some(e)),
            },
            durable: false,
        }
    }

    /// Async [`AuditLog::log_durable`].
    pub fn log_durable_async(&self, event: impl Into<AuditEvent>) -> LogFuture<'_> {
        LogFuture {
            durable: true,
            ..self.log_async(event)
        }
    }

    /// Waits until every event queued before this call is durable.
    pub fn flush(&self) -> Result<(), AuditError> {
        let no = {
            let s = self.inner.shared.lock();
            s.next_no - 1
        };
        self.wait_durable(no, None)
    }

    /// Async [`AuditLog::flush`].
    pub fn flush_async(&self) -> LogFuture<'_> {
        let no = self.inner.shared.lock().next_no - 1;
        LogFuture {
            log: self,
            state: FutState::Durable(no),
            durable: true,
        }
    }

    /// Stops accepting events, writes and syncs everything queued, closes
    /// the sinks (final checkpoint) and joins the writer. Other handles
    /// get [`AuditError::Closed`] afterwards.
    pub fn shutdown(&self) -> Result<(), AuditError> {
        self.inner.close_and_join()
    }

    /// Monitoring counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.lock().stats
    }

    fn enqueue(&self, event: EncodedEvent, deadline: Option<Instant>) -> Result<u64, AuditError> {
        let shared = &self.inner.shared;
        let mut s = shared.lock();
        let mut event = event;
        let mut counted = false;
        loop {
            match s.try_push(event, shared)? {
                Push::Queued(no) => return Ok(no),
                Push::Full(back) => event = back,
            }
            if self.inner.overflow == Overflow::DropNewest {
                return Err(s.drop_one(shared));
            }
            if !counted {
                s.stats.producer_waits += 1;
                counted = true;
            }
            s.space_waiters += 1;
            if s.writer_waiting {
                shared.work.notify_one();
            }
            s = match deadline {
                None => shared.space.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        s.space_waiters -= 1;
                        return Err(AuditError::Timeout);
                    }
                    shared
                        .space
                        .wait_timeout(s, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            s.space_waiters -= 1;
        }
    }

    fn wait_durable(&self, no: u64, deadline: Option<Instant>) -> Result<(), AuditError> {
        let shared = &self.inner.shared;
        let mut s = shared.lock();
        s.want(no, shared);
        loop {
            if s.is_durable(no)? {
                return Ok(());
            }
            s.durable_waiters += 1;
            s = match deadline {
                None => shared.durable.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        s.durable_waiters -= 1;
                        return Err(AuditError::Timeout);
                    }
                    shared
                        .durable
                        .wait_timeout(s, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            s.durable_waiters -= 1;
        }
    }
}

// The future holds its event inline so that logging from async code costs
// no allocation beyond the event itself.
#[allow(clippy::large_enum_variant)]
enum FutState {
    Queue(Option<EncodedEvent>),
    Durable(u64),
    Error(Option<AuditError>),
    Done,
}

/// The future of [`AuditLog::log_async`], [`AuditLog::log_durable_async`]
/// and [`AuditLog::flush_async`]. Runtime-agnostic: it parks on a waker,
/// never on the executor thread. Dropping it after the event was queued
/// does not unqueue the event.
#[must_use = "futures do nothing unless awaited"]
pub struct LogFuture<'a> {
    log: &'a AuditLog,
    state: FutState,
    durable: bool,
}

impl Future for LogFuture<'_> {
    type Output = Result<(), AuditError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let inner = &this.log.inner;
        let shared = &inner.shared;
        loop {
            match &mut this.state {
                FutState::Error(e) => {
                    let e = e.take().unwrap_or(AuditError::Closed);
                    this.state = FutState::Done;
                    return Poll::Ready(Err(e));
                }
                FutState::Done => return Poll::Ready(Err(AuditError::Closed)),
                FutState::Queue(slot) => {
                    let Some(event) = slot.take() else {
                        this.state = FutState::Done;
                        return Poll::Ready(Err(AuditError::Closed));
                    };
                    let mut s = shared.lock();
                    match s.try_push(event, shared) {
                        Err(e) => {
                            this.state = FutState::Done;
                            return Poll::Ready(Err(e));
                        }
                        Ok(Push::Queued(no)) => {
                            if !this.durable {
                                this.state = FutState::Done;
                                return Poll::Ready(Ok(()));
                            }
                            this.state = FutState::Durable(no);
                        }
                        Ok(Push::Full(back)) => {
                            if inner.overflow == Overflow::DropNewest {
                                this.state = FutState::Done;
                                return Poll::Ready(Err(s.drop_one(shared)));
                            }
                            s.stats.producer_waits += 1;
                            s.space_wakers.push(cx.waker().clone());
                            if s.writer_waiting {
                                shared.work.notify_one();
                            }
                            *slot = Some(back);
                            return Poll::Pending;
                        }
                    }
                }
                FutState::Durable(no) => {
                    let no = *no;
                    let mut s = shared.lock();
                    s.want(no, shared);
                    match s.is_durable(no) {
                        Ok(true) => {
                            this.state = FutState::Done;
                            return Poll::Ready(Ok(()));
                        }
                        Err(e) => {
                            this.state = FutState::Done;
                            return Poll::Ready(Err(e));
                        }
                        Ok(false) => {
                            s.durable_wakers.push(cx.waker().clone());
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

/// Longest the writer sleeps without calling `tick` on the sinks.
const TICK: Duration = Duration::from_millis(500);

/// How long an idle writer woken by a non-durable event waits for more,
/// and how many queued events end that wait early.
/// Default of [`AuditLogBuilder::linger`].
const LINGER: Duration = Duration::from_micros(200);
const LINGER_BATCH: usize = 64;

struct Writer {
    shared: Arc<Shared>,
    sinks: FanOut,
    durability: Durability,
    /// Events written to every sink (monitoring).
    written: u64,
    /// See [`AuditLogBuilder::linger`].
    linger: Duration,
}

impl Writer {
    fn run(mut self) {
        let result = self.run_loop();
        let close = self.sinks.close();
        let mut s = self.shared.lock();
        if let Err(e) = result.and(close) {
            s.failed.get_or_insert_with(|| Arc::new(e));
        }
        s.writer_done = true;
        // Everything left is either failed or was written: wake all.
        self.shared.durable.notify_all();
        self.shared.space.notify_all();
        s.durable_wakers.drain(..).for_each(Waker::wake);
        s.space_wakers.drain(..).for_each(Waker::wake);
    }

    fn run_loop(&mut self) -> Result<(), SinkError> {
        let mut batch: Vec<Item> = Vec::new();
        // Highest event number written to the sinks; whether some written
        // data is not yet synced, and since when.
        let mut written_no = 0u64;
        let mut unsynced_since: Option<Instant> = None;
        let mut last_tick = Instant::now();
        let interval = self.interval();
        loop {
            let (dropped, want, durable_no, closed) = {
                let mut s = self.shared.lock();
                let mut slept = false;
                loop {
                    let now = Instant::now();
                    let commit_due = unsynced_since.map(|t| t + interval);
                    let waiter = s.want_durable > s.durable_no && unsynced_since.is_some();
                    if !s.items.is_empty()
                        || s.pending_dropped > 0
                        || s.closed
                        || waiter
                        || commit_due.is_some_and(|d| d <= now)
                        || last_tick + TICK <= now
                    {
                        break;
                    }
                    let until = commit_due.map_or(last_tick + TICK, |d| d.min(last_tick + TICK));
                    s.writer_waiting = true;
                    s = self
                        .shared
                        .work
                        .wait_timeout(s, until.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    s.writer_waiting = false;
                    slept = true;
                }
                // Woken from idle for a handful of non-durable events: wait a
                // moment so a single fast producer gets batches, not one
                // wake-up (two context switches) per event.
                if slept
                    && !s.closed
                    && s.items.len() < LINGER_BATCH.min(s.capacity)
                    && s.want_durable <= s.durable_no
                    && s.space_waiters == 0
                {
                    s.writer_waiting = true;
                    s.lingering = true;
                    s = self
                        .shared
                        .work
                        .wait_timeout(s, self.linger)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    s.lingering = false;
                    s.writer_waiting = false;
                }
                std::mem::swap(&mut s.items, &mut batch);
                if !batch.is_empty() {
                    if s.space_waiters > 0 {
                        self.shared.space.notify_all();
                    }
                    s.space_wakers.drain(..).for_each(Waker::wake);
                }
                let dropped = std::mem::take(&mut s.pending_dropped);
                (dropped, s.want_durable, s.durable_no, s.closed)
            };

            if dropped > 0 {
                let mut e = events_dropped(dropped).build();
                e.id = new_event_id();
                // A drop notice is small and always encodable; if it were
                // not, failing loudly is right even for a lossy log.
                let enc =
                    EncodedEvent::new(e).map_err(|e| SinkError::new("writer", e.to_string()))?;
                self.sinks.write(&enc)?;
                self.written += 1;
                unsynced_since.get_or_insert_with(Instant::now);
            }
            let every = self.durability == Durability::EveryEvent;
            for item in batch.drain(..) {
                self.sinks.write(&item.event)?;
                self.written += 1;
                written_no = item.no;
                if every {
                    self.sinks.sync()?;
                    unsynced_since = None;
                    self.publish(written_no, true);
                } else {
                    unsynced_since.get_or_insert_with(Instant::now);
                }
            }

            let now = Instant::now();
            let sync_now = unsynced_since
                .is_some_and(|t| closed || want > durable_no || t + interval <= now || every);
            if sync_now {
                match self.durability {
                    Durability::None => self.sinks.flush()?,
                    _ => self.sinks.sync()?,
                }
                unsynced_since = None;
                self.publish(written_no, true);
            } else {
                self.publish(written_no, false);
            }
            if last_tick + TICK <= now {
                self.sinks.tick(SystemTime::now())?;
                last_tick = now;
            }
            if closed && self.shared.lock().items.is_empty() {
                // Nothing can be queued after `closed`; a last drop count
                // is picked up by one more round.
                if self.shared.lock().pending_dropped == 0 {
                    return Ok(());
                }
            }
        }
    }

    fn interval(&self) -> Duration {
        match self.durability {
            Durability::GroupCommit { interval } => interval,
            // With no syncing, the timer only bounds how long output waits
            // in a buffer before it is handed to the OS.
            Durability::None => Duration::from_millis(5),
            Durability::EveryEvent => Duration::ZERO,
        }
    }

    /// Publishes progress. With `synced`, everything up to event `no` is
    /// durable and waiters up to it are released.
    fn publish(&self, no: u64, synced: bool) {
        let mut s = self.shared.lock();
        s.stats.written = self.written;
        if !synced {
            return;
        }
        s.stats.syncs += 1;
        if no > s.durable_no {
            s.durable_no = no;
        }
        if s.durable_waiters > 0 {
            self.shared.durable.notify_all();
        }
        s.durable_wakers.drain(..).for_each(Waker::wake);
    }
}
