//! `relatent serve`: a local web explorer over a trained run. One page (HTML, CSS and script
//! served from the binary, no network needed) and a JSON API under `/api/` over the run loaded
//! once for inference. Requests are answered on tokio's blocking pool, so several tabs can ask
//! at once; every bad request is a 4xx with a JSON `{"error": …}`, never a panic.

mod api;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};

use crate::eval::{EvalReport, read_eval};
use crate::inference::Run;
use crate::run_dir::RunDir;
use crate::viz::figures::training_panels;
use crate::{Error, Result};

pub use api::Explorer;

/// The largest request body taken (an uploaded image, or a batch of codes).
pub const BODY_LIMIT: usize = 8 << 20;

/// The page.
const PAGE: &str = include_str!("page.html");

/// Loads the run in `dir` and everything the explorer shows of it; errors before any socket
/// is opened.
pub fn load(dir: &Path) -> Result<Explorer> {
    let run_dir = RunDir::new(dir);
    let run = Run::open(&run_dir, None)?;
    let eval: Option<EvalReport> =
        run_dir.eval().exists().then(|| read_eval(&run_dir)).transpose()?;
    let curves = training_panels(&run_dir.metrics())?
        .into_iter()
        .map(|p| (p.title, p.series.into_iter().flat_map(|s| s.points).collect()))
        .collect();
    Ok(Explorer::new(run, eval, curves))
}

/// The explorer's routes.
pub fn router(explorer: Arc<Explorer>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/summary", get(api::summary))
        .route("/api/components/{component}/mean.png", get(api::component_mean))
        .route("/api/components/{component}/directions", get(api::directions))
        .route("/api/test-images", get(api::test_images))
        .route("/api/encode", post(api::encode))
        .route("/api/decode", post(api::decode))
        .route("/api/apply", post(api::apply))
        .fallback(|| async { api::ApiError::not_found("no such page or endpoint").into_response() })
        .layer(axum::middleware::from_fn(api::refuse_announced_oversize))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(explorer)
}

/// Serves `explorer` on `addr` until Ctrl-C ([`crate::train::request_stop`]); `ready` is told the address bound (port 0 asks
/// for any free port).
pub fn serve(explorer: Explorer, addr: SocketAddr, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Requests run inference partly on these threads: the same arithmetic as a CLI run.
        .on_thread_start(crate::perf::flush_subnormals_on_this_thread)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the server: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Invalid(format!("cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr().map_err(|e| Error::Invalid(e.to_string()))?;
        ready(bound);
        axum::serve(listener, router(Arc::new(explorer)))
            .with_graceful_shutdown(async {
                // The binary's Ctrl-C handler raises the stop flag that training also obeys.
                while !crate::train::stop_requested() {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            })
            .await
            .map_err(|e| Error::Invalid(format!("the server stopped: {e}")))
    })
}
