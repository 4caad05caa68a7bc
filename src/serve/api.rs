//! The explorer's JSON API (documented in the README). Images travel as PNG data URIs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use nalgebra::{DMatrix, SymmetricEigen};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::data::images::{model_bytes, png_bytes};
use crate::eval::EvalReport;
use crate::eval::ood::{self, OodReference};
use crate::inference::{AbsAeModel, Placement, Run};
use crate::prior::AlphaRule;
use crate::rel::learner::relation_row;

/// Codes one decode request may carry.
const MAX_CODES: usize = 256;
/// Test images one gallery request may ask for.
const MAX_GALLERY: usize = 64;
/// The α the page's verdicts use.
const ALPHA: f64 = 0.5;

/// A loaded run and what the page shows of it.
pub struct Explorer {
    run: Run,
    eval: Option<EvalReport>,
    curves: Vec<(String, Vec<(f64, f64)>)>,
    rule: AlphaRule,
    /// PNG bytes of every component's decoded mean (AbsAE runs).
    means: Vec<Vec<u8>>,
    /// Test images of every component.
    by_component: Vec<Vec<usize>>,
}

impl Explorer {
    /// The explorer of `run`, its `eval.json` (if evaluated) and its training curves.
    pub fn new(
        run: Run,
        eval: Option<EvalReport>,
        curves: Vec<(String, Vec<(f64, f64)>)>,
    ) -> Explorer {
        let rule = run.ctx.config.eval.alpha_rule();
        let means = match run.model.absae() {
            Some(m) => {
                let codes: Vec<f32> = m.mixture.means.iter().flatten().map(|&v| v as f32).collect();
                let pixels = run.decode(&codes);
                pixels.chunks_exact(run.ctx.data.image_len()).map(|p| png(p, &run)).collect()
            }
            None => Vec::new(),
        };
        let by_component = run.test_items_by_component();
        Explorer { run, eval, curves, rule, means, by_component }
    }

    fn absae(&self) -> Result<&AbsAeModel, ApiError> {
        self.run.absae().map_err(|e| ApiError::bad(e.to_string()))
    }

    fn latent(&self) -> usize {
        self.run.model.latent()
    }

    fn placement(&self, code: &[f32]) -> Option<Value> {
        let model = self.run.model.absae()?;
        Some(placement_json(model.place(code, self.rule, ALPHA), &self.run))
    }

    fn ood_reference(&self) -> Option<&OodReference> {
        self.eval.as_ref().and_then(|e| e.ood_reference.as_ref())
    }
}

/// An API error: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Answers a request whose `Content-Length` is over [`super::BODY_LIMIT`] with a JSON 413 at
/// once, before its body is read ([`DefaultBodyLimit`](axum::extract::DefaultBodyLimit) still
/// bounds bodies sent without a length).
pub async fn refuse_announced_oversize(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    match announced {
        Some(n) if n > super::BODY_LIMIT => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the body is {n} bytes; the limit is {}", super::BODY_LIMIT),
        }
        .into_response(),
        _ => next.run(request).await,
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// Runs `f` on the blocking pool (inference is CPU work) and turns a failure to run into a 500.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("the request failed: {e}"),
    })
}

/// Parses a JSON body into `T`, naming what is wrong.
fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad(format!("bad request body: {e}")))
}

/// `GET /api/summary`: the run, its components and relations, its tables and curves.
pub async fn summary(State(x): State<Arc<Explorer>>) -> ApiResult {
    let run = &x.run;
    let task = &run.ctx.data.task;
    let components: Vec<Value> = match run.model.absae() {
        Some(_) => (0..task.components())
            .map(|c| json!({"id": c, "label": task.component_label(c), "short": task.component_short_label(c), "test_images": x.by_component[c].len()}))
            .collect(),
        None => Vec::new(),
    };
    let relations: Vec<Value> = run
        .model
        .absae()
        .map(|m| {
            m.relations()
                .relations
                .iter()
                .map(|r| json!({"name": r.name, "arity": r.arity, "outputs": r.outputs, "operator": r.operator.map(|o| task.component_short_label(o))}))
                .collect()
        })
        .unwrap_or_default();
    let config = &run.ctx.config;
    Ok(Json(json!({
        "task": config.task,
        "model": config.model.name(),
        "preset": config.preset.name(),
        "steps": run.state.step,
        "image_shape": run.image_shape(),
        "latent": x.latent(),
        "alpha": ALPHA,
        "alpha_rule": run.model.absae().map(|_| x.rule.name()),
        "components": components,
        "relations": relations,
        "eval": x.eval,
        "curves": x.curves.iter().map(|(name, points)| json!({"name": name, "points": points})).collect::<Vec<_>>(),
    })))
}

/// `GET /api/components/{k}/mean.png`: the decoded mean of component k.
pub async fn component_mean(
    State(x): State<Arc<Explorer>>,
    Path(component): Path<String>,
) -> Response {
    match component.parse::<usize>().ok().and_then(|k| x.means.get(k)) {
        Some(bytes) => ([(header::CONTENT_TYPE, "image/png")], bytes.clone()).into_response(),
        None => ApiError::not_found(format!(
            "no component '{component}' (this run has {})",
            x.means.len()
        ))
        .into_response(),
    }
}

/// `GET /api/components/{k}/directions`: component k's mean and the principal directions of
/// its covariance, each with its standard deviation, widest first.
pub async fn directions(
    State(x): State<Arc<Explorer>>,
    Path(component): Path<String>,
) -> ApiResult {
    let model = x.absae()?;
    let k = component.parse::<usize>().ok().filter(|&k| k < model.mixture.components());
    let k = k.ok_or_else(|| ApiError::not_found(format!("no component '{component}'")))?;
    let d = model.mixture.dim;
    let l = DMatrix::from_row_slice(d, d, &model.mixture.cholesky[k]);
    let eigen = SymmetricEigen::new(&l * l.transpose());
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let directions: Vec<Value> = order
        .iter()
        .map(|&i| json!({"vector": eigen.eigenvectors.column(i).iter().collect::<Vec<_>>(), "sd": eigen.eigenvalues[i].max(0.0).sqrt()}))
        .collect();
    Ok(Json(json!({"component": k, "mean": model.mixture.means[k], "directions": directions})))
}

/// `GET /api/test-images?component=k&limit=n`: test images (of component k when given).
pub async fn test_images(
    State(x): State<Arc<Explorer>>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let limit = match query.get("limit") {
        None => 12,
        Some(v) => v.parse::<usize>().ok().filter(|&n| (1..=MAX_GALLERY).contains(&n)).ok_or_else(
            || ApiError::bad(format!("limit must be 1 to {MAX_GALLERY} (got '{v}')")),
        )?,
    };
    let items: Vec<usize> = match query.get("component") {
        None => x.run.test().iter().copied().take(limit).collect(),
        Some(v) => {
            let list = v.parse::<usize>().ok().and_then(|k| x.by_component.get(k));
            let list = list.ok_or_else(|| ApiError::not_found(format!("no component '{v}'")))?;
            list.iter().copied().take(limit).collect()
        }
    };
    let x2 = Arc::clone(&x);
    blocking(move || {
        let run = &x2.run;
        let data = &run.ctx.data;
        let pixels = data.render_batch(&items);
        let images: Vec<Value> = items
            .iter()
            .zip(pixels.chunks_exact(data.image_len()))
            .map(|(&i, p)| json!({"item": i, "component": data.components[i], "label": data.task.component_short_label(data.components[i]), "image": data_uri(&png(p, run))}))
            .collect();
        Ok(Json(json!({ "images": images })))
    })
    .await?
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodeRequest {
    /// A test image, as `/api/test-images` lists it.
    item: Option<usize>,
    /// An image of the user's: a PNG or JPEG, as a data URI or plain base64.
    image: Option<String>,
}

/// `POST /api/encode`: an image's code, where it lands, its OOD score and reconstruction.
pub async fn encode(State(x): State<Arc<Explorer>>, bytes: Bytes) -> ApiResult {
    let request: EncodeRequest = body(&bytes)?;
    let x2 = Arc::clone(&x);
    blocking(move || {
        let run = &x2.run;
        let pixels = match (request.item, request.image) {
            (Some(item), None) => {
                if !run.test().contains(&item) {
                    return Err(ApiError::not_found(format!("no test image {item}")));
                }
                run.ctx.data.render_batch(&[item])
            }
            (None, Some(image)) => user_image(&image, run)?,
            _ => return Err(ApiError::bad("give exactly one of 'item' and 'image'")),
        };
        let code = run.encode_pixels(&pixels);
        let reconstruction = run.decode(&code);
        let ood = match (run.model.absae(), x2.ood_reference()) {
            (Some(model), Some(reference)) => {
                let score = ood::score_pixels(run, model, x2.rule, &pixels, reference).chosen()[0];
                json!({"score": score, "p95": reference.p95, "p99": reference.p99, "score_name": reference.score})
            }
            _ => Value::Null,
        };
        Ok(Json(json!({
            "code": code,
            "image": data_uri(&png(&pixels, run)),
            "reconstruction": data_uri(&png(&reconstruction, run)),
            "placement": x2.placement(&code),
            "ood": ood,
        })))
    })
    .await?
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecodeRequest {
    codes: Vec<Vec<f32>>,
}

/// `POST /api/decode`: images of codes (a batch of up to 256).
pub async fn decode(State(x): State<Arc<Explorer>>, bytes: Bytes) -> ApiResult {
    let request: DecodeRequest = body(&bytes)?;
    if request.codes.is_empty() || request.codes.len() > MAX_CODES {
        return Err(ApiError::bad(format!(
            "give 1 to {MAX_CODES} codes (got {})",
            request.codes.len()
        )));
    }
    let flat = codes(&request.codes, x.latent())?;
    let x2 = Arc::clone(&x);
    blocking(move || {
        let run = &x2.run;
        let pixels = run.decode(&flat);
        let images: Vec<String> =
            pixels.chunks_exact(run.ctx.data.image_len()).map(|p| data_uri(&png(p, run))).collect();
        let placements: Vec<Option<Value>> =
            flat.chunks_exact(x2.latent()).map(|z| x2.placement(z)).collect();
        Ok(Json(json!({ "images": images, "placements": placements })))
    })
    .await?
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyRequest {
    relation: String,
    code: Vec<f32>,
    /// Further operands' codes, for relations with several inputs.
    #[serde(default)]
    operands: Vec<Vec<f32>>,
    /// The operator's code (relations selected by an operator; default: its prior mean).
    operator: Option<Vec<f32>>,
}

/// `POST /api/apply`: a relation applied by the ReL to a code.
pub async fn apply(State(x): State<Arc<Explorer>>, bytes: Bytes) -> ApiResult {
    let request: ApplyRequest = body(&bytes)?;
    let model = x.absae()?;
    let relations = model.relations();
    let id =
        relations.position(&request.relation).map_err(|e| ApiError::not_found(e.to_string()))?;
    let relation = &relations.relations[id];
    if request.operands.len() + 1 != relation.arity {
        return Err(ApiError::bad(format!(
            "'{}' takes {} further operand(s), got {}",
            relation.name,
            relation.arity - 1,
            request.operands.len()
        )));
    }
    let d = x.latent();
    let mut inputs = codes(std::slice::from_ref(&request.code), d)?;
    inputs.extend(codes(&request.operands, d)?);
    let operator = match (relation.operator, request.operator) {
        (None, Some(_)) => {
            return Err(ApiError::bad(format!(
                "'{}' is not selected by an operator",
                relation.name
            )));
        }
        (None, None) => None,
        (Some(op), None) => Some(model.mixture.means[op].iter().map(|&v| v as f32).collect()),
        (Some(_), Some(code)) => Some(codes(&[code], d)?),
    };
    let x2 = Arc::clone(&x);
    blocking(move || {
        let (run, model) = (&x2.run, x2.absae()?);
        let mut row = Vec::new();
        relation_row(model.relations(), id, &inputs, operator.as_deref(), &mut row);
        let out = model.learner.apply_rows(&row);
        let pixels = run.decode(&out);
        let outputs: Vec<Value> = out
            .chunks_exact(d)
            .zip(pixels.chunks_exact(run.ctx.data.image_len()))
            .map(|(z, p)| json!({"code": z, "image": data_uri(&png(p, run)), "placement": x2.placement(z)}))
            .collect();
        Ok(Json(json!({ "relation": x2.absae()?.relations().relations[id].name, "outputs": outputs })))
    })
    .await?
}

/// Codes of the run's latent size, all finite, side by side.
fn codes(codes: &[Vec<f32>], d: usize) -> Result<Vec<f32>, ApiError> {
    if let Some(bad) = codes.iter().position(|c| c.len() != d || c.iter().any(|v| !v.is_finite())) {
        return Err(ApiError::bad(format!(
            "code {bad} must be {d} finite numbers (got {})",
            codes[bad].len()
        )));
    }
    Ok(codes.concat())
}

/// A user's image (a data URI or base64 of a PNG or JPEG), resized like folder data.
fn user_image(text: &str, run: &Run) -> Result<Vec<f32>, ApiError> {
    let encoded = text.split_once(";base64,").map_or(text, |(_, data)| data);
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|e| ApiError::bad(format!("image: not base64 ({e})")))?;
    let image = image::load_from_memory(&bytes)
        .map_err(|e| ApiError::bad(format!("image: not a readable PNG or JPEG ({e})")))?;
    Ok(model_bytes(&image, run.image_shape()).into_iter().map(|b| b as f32 / 255.0).collect())
}

fn placement_json(p: Placement, run: &Run) -> Value {
    json!({
        "component": p.component,
        "label": p.label,
        "short": run.ctx.data.task.component_short_label(p.component),
        "confidence": p.posterior,
        "log_density": p.log_density,
        "accepted": p.accepted,
    })
}

/// An image of the run's layout as PNG bytes.
fn png(pixels: &[f32], run: &Run) -> Vec<u8> {
    png_bytes(pixels, run.image_shape())
}

fn data_uri(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", STANDARD.encode(png))
}
