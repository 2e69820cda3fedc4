//! A live dashboard for seawall registries, for any axum service that holds one.
//!
//! [`Dashboard::builder`] takes one or more named [`Registries`] and gives an axum [`Router`]
//! to nest under a path of the host's (commerce mounts it at `/admin/dashboard`):
//!
//! | Route (under the mount path)          | What                                                 |
//! |---------------------------------------|------------------------------------------------------|
//! | `GET /`                               | the index: a link per registry                       |
//! | `GET /registries/{r}`                 | the page: a tile per instance name                   |
//! | `GET /registries/{r}/snapshot`        | the tiles as JSON ([`Snapshot`])                     |
//! | `GET /registries/{r}/events`          | Server-Sent Events: `snapshot` at once and every tick, `state` on each breaker transition |
//! | `POST /registries/{r}/circuit-breakers/{name}` | an operator action (needs the [`Authorizer`]) |
//! | `GET /assets/dashboard.{js,css}`      | the embedded assets                                  |
//!
//! A tile shows the breaker's state as a colour, its failure and slow-call rates against the
//! thresholds, calls and rejections per second, the bulkhead's usage, the adaptive limit and
//! the rate limiter's permits. State changes are pushed the moment a breaker's listener sees
//! them; rates come with a server-side snapshot every tick (1 s by default). The browser only
//! listens (`EventSource`): there is no polling loop. Assets are compiled in (`include_str!`):
//! no CDN, no npm.
//!
//! Read-only by default. Operator actions (force open, close, change the failure-rate
//! threshold) need an [`Authorizer`] from the host; [`bearer_token`] checks an
//! `Authorization: Bearer …` header in constant time.
//!
//! # Examples
//!
//! ```
//! use seawall::registry::Registries;
//! use seawall_dashboard::{Dashboard, bearer_token};
//!
//! let registries = Registries::new();
//! let _ = registries.policy("pg");
//! let dashboard = Dashboard::builder("/admin/dashboard")
//!     .registry("main", registries)
//!     .authorizer(bearer_token("s3cret"))
//!     .build();
//! let app: axum::Router = axum::Router::new().nest("/admin/dashboard", dashboard.router());
//! # let _ = app;
//! ```

mod actions;
mod live;
mod page;
mod snapshot;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use seawall::registry::Registries;
use tokio_util::sync::CancellationToken;

pub use self::actions::{Authorizer, bearer_token};
use self::live::Hub;
pub use self::page::escape_html;
pub use self::snapshot::{
    AdaptiveTile, BreakerTile, BulkheadTile, RateLimiterTile, Snapshot, Tile, per_second,
};

/// The default time between two snapshots on a page's event stream.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// A dashboard over one or more named registries. Cheap to clone.
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    title: String,
    hubs: BTreeMap<String, Arc<Hub>>,
    tick: Duration,
    authorizer: Option<Authorizer>,
    shutdown: CancellationToken,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("base", &self.inner.base)
            .field("registries", &self.inner.hubs.keys().collect::<Vec<_>>())
            .field("tick", &self.inner.tick)
            .field("actions", &self.inner.authorizer.is_some())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Dashboard`].
#[must_use]
pub struct DashboardBuilder {
    base: String,
    title: String,
    registries: Vec<(String, Registries)>,
    tick: Duration,
    authorizer: Option<Authorizer>,
    shutdown: CancellationToken,
}

impl fmt::Debug for DashboardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardBuilder")
            .field("base", &self.base)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Starts a dashboard to be nested at `mount_path` (`""` for the root, else a path like
    /// `/admin/dashboard`, no trailing slash): the pages build their links from it.
    pub fn builder(mount_path: &str) -> DashboardBuilder {
        DashboardBuilder {
            base: mount_path.trim_end_matches('/').to_owned(),
            title: "seawall".to_owned(),
            registries: Vec::new(),
            tick: DEFAULT_TICK,
            authorizer: None,
            shutdown: CancellationToken::new(),
        }
    }

    /// The current tiles of registry `name`, without rates (they need two readings).
    pub fn snapshot(&self, name: &str) -> Option<Snapshot> {
        let hub = self.inner.hubs.get(name)?;
        Some(snapshot::read(&hub.name, &hub.registries))
    }

    /// The routes, to nest at the mount path given to [`Dashboard::builder`].
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/assets/dashboard.js", get(script))
            .route("/assets/dashboard.css", get(style))
            .route("/registries/{registry}", get(registry_page))
            .route("/registries/{registry}/snapshot", get(snapshot_json))
            .route("/registries/{registry}/events", get(events))
            .route(
                "/registries/{registry}/circuit-breakers/{name}",
                post(actions::breaker_action),
            )
            .with_state(self.clone())
    }

    fn hub(&self, name: &str) -> Option<&Arc<Hub>> {
        self.inner.hubs.get(name)
    }
}

impl DashboardBuilder {
    /// Shows `registries` under `name` (its page is `/registries/{name}`). A name given twice
    /// keeps the last registries.
    pub fn registry(mut self, name: impl Into<String>, registries: Registries) -> Self {
        self.registries.push((name.into(), registries));
        self
    }

    /// The pages' heading (default `seawall`).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The time between two snapshots on an event stream (default [`DEFAULT_TICK`]; a zero
    /// duration is taken as one millisecond).
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick.max(Duration::from_millis(1));
        self
    }

    /// Turns operator actions on, allowed for the requests `authorizer` accepts.
    pub fn authorizer(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Ends every open event stream when `shutdown` is cancelled, so that a graceful shutdown
    /// of the host is not held up by open pages.
    pub fn shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The dashboard; it starts listening to the registries' events now.
    pub fn build(self) -> Dashboard {
        let hubs = self
            .registries
            .into_iter()
            .map(|(name, registries)| (name.clone(), Hub::new(name, registries)))
            .collect();
        Dashboard {
            inner: Arc::new(Inner {
                base: self.base,
                title: self.title,
                hubs,
                tick: self.tick,
                authorizer: self.authorizer,
                shutdown: self.shutdown,
            }),
        }
    }
}

fn with_type(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// Headers for the HTML pages: nothing but our own script and style may run.
fn page_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
}

async fn index(State(dashboard): State<Dashboard>) -> Response {
    let inner = &dashboard.inner;
    let page = page::index_page(
        &inner.base,
        &inner.title,
        inner.hubs.keys().map(String::as_str),
    );
    (page_headers(), Html(page)).into_response()
}

async fn script() -> Response {
    with_type("text/javascript; charset=utf-8", page::SCRIPT)
}

async fn style() -> Response {
    with_type("text/css; charset=utf-8", page::STYLE)
}

async fn registry_page(
    State(dashboard): State<Dashboard>,
    Path(registry): Path<String>,
) -> Response {
    if dashboard.hub(&registry).is_none() {
        return actions::no_registry();
    }
    let inner = &dashboard.inner;
    let page = page::registry_page(
        &inner.base,
        &inner.title,
        &registry,
        inner.authorizer.is_some(),
    );
    (page_headers(), Html(page)).into_response()
}

async fn snapshot_json(
    State(dashboard): State<Dashboard>,
    Path(registry): Path<String>,
) -> Response {
    match dashboard.snapshot(&registry) {
        Some(snapshot) => axum::Json(snapshot).into_response(),
        None => actions::error(
            StatusCode::NOT_FOUND,
            "REGISTRY_NOT_FOUND",
            "no such registry",
        ),
    }
}

async fn events(State(dashboard): State<Dashboard>, Path(registry): Path<String>) -> Response {
    let Some(hub) = dashboard.hub(&registry).cloned() else {
        return actions::no_registry();
    };
    let stream = hub.stream(dashboard.inner.tick, dashboard.inner.shutdown.clone());
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
