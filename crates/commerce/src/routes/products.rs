//! `GET /api/v1/products`, `GET /api/v1/products/{id}`: read-pool only, never touch the PG.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use crate::domain::ProductId;
use crate::error::ApiError;
use crate::persistence;
use crate::persistence::Product;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/products", get(list))
        .route("/api/v1/products/{id}", get(one))
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<Product>>, ApiError> {
    Ok(Json(
        persistence::products(&mut *state.db.reader().await?).await?,
    ))
}

async fn one(
    State(state): State<AppState>,
    path: Result<Path<ProductId>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Product>, ApiError> {
    let Path(id) = path?;
    persistence::product(&mut *state.db.reader().await?, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound {
            code: "PRODUCT_NOT_FOUND",
            message: format!("product {id} does not exist"),
        })
}
