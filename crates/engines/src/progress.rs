//! Progress of long waits, without a terminal: a step's engine work says
//! "still waiting for …" through the sink the executor set for that step
//! (a tokio task-local, so no engine signature carries it), and the
//! executor turns it into a reporter event. Outside a step nothing listens
//! and a report is dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Where a step's progress goes.
pub type Sink = Arc<dyn Fn(String) + Send + Sync>;

/// How often a long wait says it is still waiting.
pub const EVERY: Duration = Duration::from_secs(15);

tokio::task_local! {
    static SINK: Sink;
}

/// Runs `work` with its progress going to `sink`.
pub async fn scoped<F: Future>(sink: Sink, work: F) -> F::Output {
    SINK.scope(sink, work).await
}

/// Says how a long wait is going, if anyone listens.
pub fn report(message: String) {
    let _ = SINK.try_with(|sink| sink(message));
}

/// Counts a wait's seconds and reports every [`EVERY`].
#[derive(Debug)]
pub struct Ticker {
    began: tokio::time::Instant,
    next: Duration,
}

impl Default for Ticker {
    fn default() -> Self {
        Self {
            began: tokio::time::Instant::now(),
            next: EVERY,
        }
    }
}

impl Ticker {
    /// Reports `still: <what> (N s)` once each period has passed.
    pub fn tick(&mut self, what: &str) {
        let elapsed = self.began.elapsed();
        if elapsed >= self.next {
            report(format!("still {what} ({}s)", elapsed.as_secs()));
            while self.next <= elapsed {
                self.next += EVERY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_reports_once_per_period_to_the_steps_sink_only() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink: Sink = {
            let heard = Arc::clone(&heard);
            Arc::new(move |message| heard.lock().expect("lock").push(message))
        };
        scoped(sink, async {
            let mut ticker = Ticker::default();
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                ticker.tick("waiting for BGSAVE");
            }
        })
        .await;
        // Outside the scope nobody listens, and nothing panics.
        report("unheard".into());
        let heard = heard.lock().expect("lock").clone();
        assert_eq!(
            heard,
            vec![
                "still waiting for BGSAVE (15s)".to_string(),
                "still waiting for BGSAVE (30s)".to_string()
            ]
        );
    }
}
