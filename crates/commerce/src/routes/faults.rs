//! Admin API for game-day fault injection on the PG paths (bearer token, as the rest of the
//! admin API).
//!
//! - `GET /api/v1/admin/faults`: every injector (`pg-charge`, `pg-query`) with its settings
//!   and how many faults of each kind it has injected.
//! - `PUT /api/v1/admin/faults/{name}`: change any subset of `enabled`, `errorInjectionRate`,
//!   `latencyInjectionRate`, `latencyDurationMs`; applied to the next call through seawall's
//!   registry. A game day starts with `{"enabled": true, "errorInjectionRate": 0.2}` and ends
//!   with `{"enabled": false}`. Validation errors name the field (422 `INVALID_CONFIG`).

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use seawall::FaultInjector;
use seawall::fault::FaultKind;
use seawall::registry::RegistryError;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin::{Admin, invalid};
use super::json::ApiJson;
use crate::error::ApiError;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FaultView {
    name: String,
    config: FaultFields,
    injected: Injected,
}

#[derive(Debug, Serialize)]
struct Injected {
    error: u64,
    latency: u64,
    outcome: u64,
}

/// The live-editable fields; every one optional in a PUT.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct FaultFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_injection_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_injection_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_duration_ms: Option<u64>,
}

fn view(name: &str, injector: &FaultInjector) -> FaultView {
    let config = injector.config();
    FaultView {
        name: name.to_owned(),
        config: FaultFields {
            enabled: Some(config.enabled),
            error_injection_rate: Some(config.error_injection_rate),
            latency_injection_rate: Some(config.latency_injection_rate),
            latency_duration_ms: Some(
                u64::try_from(config.latency_duration.as_millis()).unwrap_or(u64::MAX),
            ),
        },
        injected: Injected {
            error: injector.injected(FaultKind::Error),
            latency: injector.injected(FaultKind::Latency),
            outcome: injector.injected(FaultKind::Outcome),
        },
    }
}

/// The API's field name for a seawall fault key.
fn api_field(key: &str) -> &str {
    match key {
        "error_injection_rate" => "errorInjectionRate",
        "latency_injection_rate" => "latencyInjectionRate",
        "latency_duration" => "latencyDurationMs",
        other => other,
    }
}

pub(super) async fn list(_: Admin, State(state): State<AppState>) -> Json<Vec<FaultView>> {
    Json(
        state
            .registries
            .fault_injectors()
            .all()
            .iter()
            .map(|(name, injector)| view(name, injector))
            .collect(),
    )
}

pub(super) async fn update(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(fields): ApiJson<FaultFields>,
) -> Result<Json<FaultView>, ApiError> {
    let Path(name) = path?;
    let registry = state.registries.fault_injectors();
    let injector = registry.find(&name).ok_or_else(|| ApiError::NotFound {
        code: "FAULT_INJECTOR_NOT_FOUND",
        message: format!("no fault injector named {name:?}"),
    })?;
    registry
        .update(&name, |mut config| {
            if let Some(v) = fields.enabled {
                config.enabled = v;
            }
            if let Some(v) = fields.error_injection_rate {
                config.error_injection_rate = v;
            }
            if let Some(v) = fields.latency_injection_rate {
                config.latency_injection_rate = v;
            }
            if let Some(v) = fields.latency_duration_ms {
                config.latency_duration = Duration::from_millis(v);
            }
            Ok(config)
        })
        .map_err(|e| match e {
            RegistryError::Invalid(e) => {
                let key = e.key().rsplit('.').next().unwrap_or_default();
                invalid(api_field(key), e.rule())
            }
            other => ApiError::NotFound {
                code: "FAULT_INJECTOR_NOT_FOUND",
                message: other.to_string(),
            },
        })?;
    tracing::warn!(injector = %name, ?fields, "fault injection changed through the admin API");
    Ok(Json(view(&name, &injector)))
}
