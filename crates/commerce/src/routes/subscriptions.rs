//! `POST /api/v1/subscriptions`, `GET /api/v1/subscriptions/{id}`, and
//! `POST /api/v1/subscriptions/{id}/pause|resume|cancel`, `PUT /api/v1/subscriptions/{id}/card`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::json::ApiJson;
use super::{AppState, UserId};
use crate::error::ApiError;
use crate::subscriptions::NewSubscriptionRequest;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/subscriptions", post(create))
        .route("/api/v1/subscriptions/{id}", get(show))
        .route("/api/v1/subscriptions/{id}/pause", post(pause))
        .route("/api/v1/subscriptions/{id}/resume", post(resume))
        .route("/api/v1/subscriptions/{id}/cancel", post(cancel))
        .route("/api/v1/subscriptions/{id}/card", put(update_card))
}

/// `PUT …/card`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CardRequest {
    card_type: String,
    card_no: String,
}

fn id(path: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    let Path(id) = path?;
    Ok(id)
}

async fn create(
    State(state): State<AppState>,
    user: UserId,
    ApiJson(request): ApiJson<NewSubscriptionRequest>,
) -> Result<Response, ApiError> {
    let created = state.subscriptions.create(user, &request).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn show(
    State(state): State<AppState>,
    user: UserId,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let view = state.subscriptions.get(user, id(path)?).await?;
    Ok(Json(view).into_response())
}

async fn pause(
    State(state): State<AppState>,
    user: UserId,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let view = state.subscriptions.pause(user, id(path)?).await?;
    Ok(Json(view).into_response())
}

async fn resume(
    State(state): State<AppState>,
    user: UserId,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let view = state.subscriptions.resume(user, id(path)?).await?;
    Ok(Json(view).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    user: UserId,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let view = state.subscriptions.cancel(user, id(path)?).await?;
    Ok(Json(view).into_response())
}

async fn update_card(
    State(state): State<AppState>,
    user: UserId,
    path: Result<Path<i64>, PathRejection>,
    ApiJson(request): ApiJson<CardRequest>,
) -> Result<Response, ApiError> {
    let id = id(path)?;
    let view = state
        .subscriptions
        .update_card(user, id, &request.card_type, &request.card_no)
        .await?;
    Ok(Json(view).into_response())
}
