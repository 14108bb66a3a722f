//! The face engine: N worker threads, each with its own pipeline (so the models run on every core at
//! once instead of queueing on one session's lock), fed from one bounded queue.
//!
//! - [`Engine::submit`] answers at once: the job is queued, or the queue is full and the caller gets
//!   [`EngineError::Busy`] with a `retry_after` estimated from the measured service time. Nothing
//!   waits without bound and memory cannot grow with the load.
//! - Two priorities: [`Priority::Continuing`] (a frame of a liveness check already under way, which
//!   would fail if it waited) is served before [`Priority::New`] work, and when the queue is full it
//!   takes the place of the newest waiting new job (that caller gets `Busy`).
//! - A job whose caller has gone (the future was dropped: client disconnected or timed out) is
//!   skipped, and one that waited longer than `max_wait` is answered `Busy` instead of being run late.
//! - The result comes back through a small future ([`Pending`]) that needs no particular async
//!   runtime; [`Pending::wait`] blocks for callers without one (CLI, benches).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::antispoof::AntiSpoof;
use crate::pipeline::FacePipeline;

/// Which queue a job goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A frame of a check in progress: served first, displaces new work when the queue is full.
    Continuing,
    /// Everything else (a login photo, an enrolment, a `/v1` request, the first frame of a check).
    New,
}

/// Why a job was not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The queue is full (or the job waited too long, or was displaced by a continuing check): try
    /// again after this long.
    Busy { retry_after: Duration },
    /// The job panicked or the engine shut down before running it.
    Lost,
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Busy { retry_after } => write!(
                f,
                "the face engine is busy: try again in {} s",
                retry_after.as_secs().max(1)
            ),
            Self::Lost => f.write_str("the face job was lost (the engine stopped or the job failed)"),
        }
    }
}

impl std::error::Error for EngineError {}

/// Size of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Worker threads, each with its own pipeline (0: the machine's cores).
    pub workers: usize,
    /// Jobs that may wait (not counting the ones running); beyond it `submit` answers `Busy`.
    /// 0: eight per worker.
    pub queue: usize,
    /// The longest a job should wait: `submit` answers `Busy` at once when the measured service
    /// time says the queue ahead would take longer, and a job that still waited longer (a burst of
    /// slow jobs) is answered `Busy` rather than run late.
    pub max_wait: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            queue: 0,
            max_wait: Duration::from_millis(800),
        }
    }
}

impl EngineConfig {
    /// The config with 0s resolved.
    pub fn resolved(self) -> Self {
        let workers = if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        };
        let queue = if self.queue == 0 { 8 * workers } else { self.queue };
        Self {
            workers,
            queue,
            ..self
        }
    }
}

struct Slot<T> {
    value: Option<Result<T, EngineError>>,
    waker: Option<Waker>,
}

/// The result of a submitted job, as a future (or [`Pending::wait`]). Dropping it cancels the job
/// if it has not started.
pub struct Pending<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, EngineError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

struct ThreadWaker(std::thread::Thread);

impl std::task::Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

impl<T> Pending<T> {
    /// Blocks this thread until the job is done (for callers without an async runtime).
    pub fn wait(mut self) -> Result<T, EngineError> {
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(v) = Pin::new(&mut self).poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }
}

struct Reply<T> {
    slot: Arc<Mutex<Slot<T>>>,
    sent: bool,
}

impl<T> Reply<T> {
    fn send(mut self, v: Result<T, EngineError>) {
        self.put(v);
    }

    fn put(&mut self, v: Result<T, EngineError>) {
        self.sent = true;
        let waker = {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.value = Some(v);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The caller dropped its `Pending`.
    fn abandoned(&self) -> bool {
        Arc::strong_count(&self.slot) == 1
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if !self.sent {
            self.put(Err(EngineError::Lost));
        }
    }
}

trait Task<W>: Send {
    fn run(self: Box<Self>, worker: &W);
    fn refuse(self: Box<Self>, e: EngineError);
    fn abandoned(&self) -> bool;
}

struct Job<F, T> {
    f: F,
    reply: Reply<T>,
}

impl<W, T: Send, F: FnOnce(&W) -> T + Send> Task<W> for Job<F, T> {
    fn run(self: Box<Self>, worker: &W) {
        let Job { f, reply } = *self;
        let out = f(worker);
        reply.send(Ok(out));
    }

    fn refuse(self: Box<Self>, e: EngineError) {
        self.reply.send(Err(e));
    }

    fn abandoned(&self) -> bool {
        self.reply.abandoned()
    }
}

struct Queued<W> {
    task: Box<dyn Task<W>>,
    at: Instant,
}

struct Queues<W> {
    continuing: VecDeque<Queued<W>>,
    new: VecDeque<Queued<W>>,
    /// Places held by [`Permit`]s not yet used.
    reserved: usize,
    closed: bool,
}

impl<W> Queues<W> {
    fn len(&self) -> usize {
        self.continuing.len() + self.new.len() + self.reserved
    }
}

struct Shared<W> {
    queues: Mutex<Queues<W>>,
    ready: Condvar,
    config: EngineConfig,
    /// Exponential average of a job's run time, in microseconds.
    service_us: AtomicU64,
    running: AtomicUsize,
    served: AtomicU64,
    shed: AtomicU64,
}

impl<W> Shared<W> {
    /// Expected wait of a job queued behind `queued` others (and the ones running).
    fn expected_wait(&self, queued: usize) -> Duration {
        let per = Duration::from_micros(self.service_us.load(Ordering::Relaxed));
        let workers = self.config.workers.max(1);
        let ahead = queued + self.running.load(Ordering::Relaxed);
        // Jobs ahead are served `workers` at a time; the running ones are half done on average.
        per * (ahead.saturating_sub(workers / 2)) as u32 / workers as u32
    }

    fn retry_after(&self, queued: usize) -> Duration {
        let per = Duration::from_micros(self.service_us.load(Ordering::Relaxed));
        let workers = self.config.workers.max(1) as u32;
        let wait = per * (queued as u32 + workers) / workers;
        // Retry-After is in whole seconds; never tell a client to come back at once.
        Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// Counters of an engine, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    pub workers: usize,
    pub bound: usize,
    pub queued: usize,
    pub running: usize,
    pub served: u64,
    pub shed: u64,
    /// Average run time of a job (exponential average).
    pub service: Duration,
}

/// The engine over worker states `W` (for faces: [`FaceWorker`]).
pub struct Engine<W: Send + 'static> {
    shared: Arc<Shared<W>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl<W: Send + 'static> std::fmt::Debug for Engine<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("stats", &self.stats()).finish()
    }
}

impl<W: Send + 'static> Engine<W> {
    /// Starts `config.workers` threads, each with a state made by `make(i)` (made here, so a model
    /// that does not load is an error at start-up, not at the first request).
    pub fn start<E>(config: EngineConfig, mut make: impl FnMut(usize) -> Result<W, E>) -> Result<Self, E> {
        let config = config.resolved();
        let states = (0..config.workers)
            .map(&mut make)
            .collect::<Result<Vec<W>, E>>()?;
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues {
                continuing: VecDeque::new(),
                new: VecDeque::new(),
                reserved: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            config,
            service_us: AtomicU64::new(50_000),
            running: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            shed: AtomicU64::new(0),
        });
        let threads = states
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("face-worker-{i}"))
                    .spawn(move || work(&shared, &state))
            })
            .collect::<std::io::Result<Vec<_>>>();
        // Spawning a thread fails only when the system is out of resources; no engine then.
        let threads = match threads {
            Ok(t) => t,
            Err(e) => panic!("cannot start face workers: {e}"),
        };
        Ok(Self { shared, threads })
    }

    pub fn config(&self) -> EngineConfig {
        self.shared.config
    }

    pub fn stats(&self) -> EngineStats {
        let queued = self
            .shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        EngineStats {
            workers: self.shared.config.workers,
            bound: self.shared.config.queue,
            queued,
            running: self.shared.running.load(Ordering::Relaxed),
            served: self.shared.served.load(Ordering::Relaxed),
            shed: self.shared.shed.load(Ordering::Relaxed),
            service: Duration::from_micros(self.shared.service_us.load(Ordering::Relaxed)),
        }
    }

    /// Holds a place in the queue (or answers `Busy` at once), for a caller that must know there is
    /// room before it commits to the job (a liveness frame consumes its token when accepted). A
    /// continuing job's place may be taken from the newest waiting new job, which is told `Busy`.
    pub fn reserve(&self, priority: Priority) -> Result<Permit<W>, EngineError> {
        let shared = &self.shared;
        let displaced = {
            let mut q = shared.queues.lock().unwrap_or_else(PoisonError::into_inner);
            if q.closed {
                return Err(EngineError::Lost);
            }
            let full = q.len() >= shared.config.queue
                || (q.len() > 0 && shared.expected_wait(q.len()) > shared.config.max_wait);
            let displaced = match (full, priority) {
                (false, _) => None,
                (true, Priority::Continuing) if !q.new.is_empty() => q.new.pop_back(),
                (true, _) => {
                    let retry_after = shared.retry_after(q.len());
                    drop(q);
                    shared.shed.fetch_add(1, Ordering::Relaxed);
                    return Err(EngineError::Busy { retry_after });
                }
            };
            q.reserved += 1;
            displaced.map(|d| (d, shared.retry_after(q.len())))
        };
        if let Some((d, retry_after)) = displaced {
            shared.shed.fetch_add(1, Ordering::Relaxed);
            d.task.refuse(EngineError::Busy { retry_after });
        }
        Ok(Permit {
            shared: self.shared.clone(),
            priority,
            used: false,
        })
    }

    /// Queues `f` to run on a worker, or answers `Busy` at once when the queue is full.
    pub fn submit<T, F>(&self, priority: Priority, f: F) -> Result<Pending<T>, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&W) -> T + Send + 'static,
    {
        Ok(self.reserve(priority)?.submit(f))
    }

    /// `submit` and await the result in one step.
    pub async fn run<T, F>(&self, priority: Priority, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&W) -> T + Send + 'static,
    {
        self.submit(priority, f)?.await
    }
}

/// A place held in the queue by [`Engine::reserve`]; dropping it unused gives the place back.
pub struct Permit<W: Send + 'static> {
    shared: Arc<Shared<W>>,
    priority: Priority,
    used: bool,
}

impl<W: Send + 'static> std::fmt::Debug for Permit<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("priority", &self.priority)
            .finish()
    }
}

impl<W: Send + 'static> Permit<W> {
    /// Queues `f` in the held place (never refused for room).
    pub fn submit<T, F>(mut self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&W) -> T + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(Slot {
            value: None,
            waker: None,
        }));
        let job = Queued {
            task: Box::new(Job {
                f,
                reply: Reply {
                    slot: slot.clone(),
                    sent: false,
                },
            }) as Box<dyn Task<W>>,
            at: Instant::now(),
        };
        self.used = true;
        {
            let mut q = self.shared.queues.lock().unwrap_or_else(PoisonError::into_inner);
            q.reserved = q.reserved.saturating_sub(1);
            if q.closed {
                drop(q);
                drop(job); // the caller gets `Lost`
                return Pending { slot };
            }
            match self.priority {
                Priority::Continuing => q.continuing.push_back(job),
                Priority::New => q.new.push_back(job),
            }
        }
        self.shared.ready.notify_one();
        Pending { slot }
    }
}

impl<W: Send + 'static> Drop for Permit<W> {
    fn drop(&mut self) {
        if !self.used {
            let mut q = self.shared.queues.lock().unwrap_or_else(PoisonError::into_inner);
            q.reserved = q.reserved.saturating_sub(1);
        }
    }
}

fn work<W>(shared: &Shared<W>, state: &W) {
    loop {
        let job = {
            let mut q = shared.queues.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(j) = q.continuing.pop_front().or_else(|| q.new.pop_front()) {
                    break j;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        if job.task.abandoned() {
            continue;
        }
        if job.at.elapsed() > shared.config.max_wait {
            let queued = shared.queues.lock().unwrap_or_else(PoisonError::into_inner).len();
            shared.shed.fetch_add(1, Ordering::Relaxed);
            job.task.refuse(EngineError::Busy {
                retry_after: shared.retry_after(queued),
            });
            continue;
        }
        shared.running.fetch_add(1, Ordering::Relaxed);
        let t = Instant::now();
        // A panicking job drops its reply (the caller gets `Lost`); the worker carries on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job.task.run(state)));
        let us = t.elapsed().as_micros().min(u64::MAX as u128) as u64;
        let old = shared.service_us.load(Ordering::Relaxed);
        shared.service_us.store((old * 7 + us) / 8, Ordering::Relaxed);
        shared.running.fetch_sub(1, Ordering::Relaxed);
        shared.served.fetch_add(1, Ordering::Relaxed);
    }
}

impl<W: Send + 'static> Drop for Engine<W> {
    fn drop(&mut self) {
        let pending: Vec<Queued<W>> = {
            let mut q = self.shared.queues.lock().unwrap_or_else(PoisonError::into_inner);
            q.closed = true;
            let mut all: Vec<Queued<W>> = q.continuing.drain(..).collect();
            all.extend(q.new.drain(..));
            all
        };
        drop(pending); // their callers get `Lost`
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What one face worker holds: its own pipeline and, when installed, its own anti-spoof model.
#[derive(Debug)]
pub struct FaceWorker {
    pub pipeline: FacePipeline,
    pub antispoof: Option<AntiSpoof>,
}

/// The face engine of the server.
pub type FaceEngine = Engine<FaceWorker>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::mpsc;

    /// A worker that blocks until told to go, so the tests control the queue exactly.
    struct Gate(Mutex<mpsc::Receiver<()>>);

    fn engine(workers: usize, queue: usize) -> (Engine<Gate>, Vec<mpsc::Sender<()>>) {
        let mut senders = Vec::new();
        let e = Engine::start(
            EngineConfig {
                workers,
                queue,
                max_wait: Duration::from_secs(30),
            },
            |_| {
                let (tx, rx) = mpsc::channel();
                senders.push(tx);
                Ok::<_, ()>(Gate(Mutex::new(rx)))
            },
        )
        .unwrap();
        (e, senders)
    }

    fn gated(id: u32) -> impl FnOnce(&Gate) -> u32 + Send + 'static {
        move |g: &Gate| {
            let _ = g.0.lock().unwrap().recv();
            id
        }
    }

    fn settle(e: &Engine<Gate>, running: usize, queued: usize) {
        for _ in 0..2000 {
            let s = e.stats();
            if s.running == running && s.queued == queued {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("engine did not settle: {:?}", e.stats());
    }

    #[test]
    fn a_full_queue_answers_busy_at_once_and_recovers() {
        let (e, go) = engine(1, 2);
        let running = e.submit(Priority::New, gated(0)).unwrap();
        settle(&e, 1, 0);
        let a = e.submit(Priority::New, gated(1)).unwrap();
        let b = e.submit(Priority::New, gated(2)).unwrap();
        let t = Instant::now();
        let refused = e.submit(Priority::New, gated(3));
        assert!(t.elapsed() < Duration::from_millis(50));
        match refused {
            Err(EngineError::Busy { retry_after }) => assert!(retry_after >= Duration::from_secs(1)),
            other => panic!("expected Busy, got {other:?}"),
        }
        for g in &go {
            for _ in 0..3 {
                g.send(()).unwrap();
            }
        }
        assert_eq!(running.wait(), Ok(0));
        assert_eq!(a.wait(), Ok(1));
        assert_eq!(b.wait(), Ok(2));
        // Recovered: the next job runs.
        go[0].send(()).unwrap();
        assert_eq!(e.submit(Priority::New, gated(4)).unwrap().wait(), Ok(4));
        assert_eq!(e.stats().shed, 1);
    }

    #[test]
    fn continuing_checks_go_first_and_displace_new_work() {
        let (e, go) = engine(1, 2);
        let running = e.submit(Priority::New, gated(0)).unwrap();
        settle(&e, 1, 0);
        let new1 = e.submit(Priority::New, gated(1)).unwrap();
        let new2 = e.submit(Priority::New, gated(2)).unwrap();
        // Full: a frame of a check in progress takes the newest new job's place.
        let frame = e.submit(Priority::Continuing, gated(10)).unwrap();
        assert!(matches!(new2.wait(), Err(EngineError::Busy { .. })));
        // Full of continuing work + one new job: another frame displaces the remaining new job.
        let frame2 = e.submit(Priority::Continuing, gated(11)).unwrap();
        assert!(matches!(new1.wait(), Err(EngineError::Busy { .. })));
        // Only continuing work left: a third frame is refused too.
        assert!(matches!(
            e.submit(Priority::Continuing, gated(12)),
            Err(EngineError::Busy { .. })
        ));
        for _ in 0..3 {
            go[0].send(()).unwrap();
        }
        assert_eq!(running.wait(), Ok(0));
        assert_eq!(frame.wait(), Ok(10));
        assert_eq!(frame2.wait(), Ok(11));
        // A continuing job submitted after a new one still runs before it.
        let hold = e.submit(Priority::New, gated(0)).unwrap();
        settle(&e, 1, 0);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s1, s2) = (seen.clone(), seen.clone());
        let n = e
            .submit(Priority::New, move |_: &Gate| s1.lock().unwrap().push(5))
            .unwrap();
        let c = e
            .submit(Priority::Continuing, move |_: &Gate| s2.lock().unwrap().push(6))
            .unwrap();
        go[0].send(()).unwrap();
        hold.wait().unwrap();
        n.wait().unwrap();
        c.wait().unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![6, 5]);
    }

    #[test]
    fn abandoned_and_stale_jobs_are_not_run_and_panics_are_lost_not_fatal() {
        let (e, go) = engine(1, 4);
        let ran = Arc::new(AtomicUsize::new(0));
        let hold = e.submit(Priority::New, gated(0)).unwrap();
        settle(&e, 1, 0);
        let r = ran.clone();
        drop(
            e.submit(Priority::New, move |_: &Gate| r.fetch_add(1, Ordering::SeqCst))
                .unwrap(),
        );
        go[0].send(()).unwrap();
        assert_eq!(hold.wait(), Ok(0));
        let boom = e
            .submit(Priority::New, |_: &Gate| -> u32 { panic!("job failed") })
            .unwrap();
        assert_eq!(boom.wait(), Err(EngineError::Lost));
        assert_eq!(e.submit(Priority::New, |_: &Gate| 7u32).unwrap().wait(), Ok(7));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a job nobody waits for is skipped");

        let (e, go) = engine(1, 4);
        let stale_engine = Engine::start(
            EngineConfig {
                workers: 1,
                queue: 4,
                max_wait: Duration::from_millis(20),
            },
            |_| Ok::<_, ()>(()),
        )
        .unwrap();
        drop((e, go));
        let slow = stale_engine
            .submit(Priority::New, |_: &()| {
                std::thread::sleep(Duration::from_millis(100))
            })
            .unwrap();
        // Refused at once (the wait ahead is longer than max_wait) or, if queued, when it is picked up
        // too late: never run.
        let late = stale_engine
            .submit(Priority::New, |_: &()| 1u8)
            .and_then(|p| p.wait());
        slow.wait().unwrap();
        assert!(matches!(late, Err(EngineError::Busy { .. })), "{late:?}");
    }

    #[test]
    fn a_permit_holds_a_place_and_gives_it_back_unused() {
        let (e, go) = engine(1, 1);
        let hold = e.submit(Priority::New, gated(0)).unwrap();
        settle(&e, 1, 0);
        let permit = e.reserve(Priority::New).unwrap();
        assert!(matches!(e.reserve(Priority::New), Err(EngineError::Busy { .. })));
        drop(permit);
        let permit = e.reserve(Priority::New).unwrap();
        let p = permit.submit(|_: &Gate| 9u32);
        go[0].send(()).unwrap();
        assert_eq!(hold.wait(), Ok(0));
        assert_eq!(p.wait(), Ok(9));
        assert_eq!(e.stats().queued, 0);
    }

    #[test]
    fn workers_run_in_parallel() {
        let e = Engine::start(
            EngineConfig {
                workers: 2,
                queue: 4,
                max_wait: Duration::from_secs(5),
            },
            |_| Ok::<_, ()>(()),
        )
        .unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let jobs: Vec<_> = (0..2)
            .map(|i| {
                let b = barrier.clone();
                e.submit(Priority::New, move |_: &()| {
                    b.wait();
                    i
                })
                .unwrap()
            })
            .collect();
        let got: Vec<i32> = jobs.into_iter().map(|p| p.wait().unwrap()).collect();
        assert_eq!(
            got,
            vec![0, 1],
            "two jobs met at a barrier: they ran at the same time"
        );
    }
}
