//! Reading `relatent metrics`'s inputs: a float code matrix and an integer factor matrix, as
//! `.npy` files (C order, one or two dimensions).

use std::path::Path;

use npyz::{DType, NpyFile, TypeChar};

use crate::{Error, Result};

/// A matrix read from `.npy`: row-major values, rows, columns.
pub struct Matrix<T> {
    pub values: Vec<T>,
    pub rows: usize,
    pub cols: usize,
}

/// An opened `.npy` file, its element type and size, rows and columns.
type OpenedNpy = (NpyFile<std::io::BufReader<std::fs::File>>, TypeChar, u64, usize, usize);

fn open(path: &Path) -> Result<OpenedNpy> {
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, e))?;
    let npy = NpyFile::new(std::io::BufReader::new(file))
        .map_err(|e| Error::file(path, format!("not a .npy file: {e}")))?;
    let DType::Plain(ts) = npy.dtype() else {
        return Err(Error::file(path, format!("unsupported dtype {}", npy.dtype().descr())));
    };
    if npy.order() != npyz::Order::C {
        return Err(Error::file(path, "is Fortran-ordered; only C order is supported"));
    }
    let (rows, cols) = match npy.shape() {
        [n] => (*n as usize, 1),
        [n, d] => (*n as usize, *d as usize),
        other => {
            return Err(Error::file(
                path,
                format!("has shape {other:?}; expected (rows, columns)"),
            ));
        }
    };
    // The header's shape is checked against the file's size before anything is allocated.
    let held = std::fs::metadata(path).map_err(|e| Error::file(path, e))?.len();
    let claimed =
        (rows as u64).checked_mul(cols as u64).and_then(|n| n.checked_mul(ts.size_field()));
    if claimed.is_none_or(|c| c > held) {
        return Err(Error::file(
            path,
            format!("claims {rows}×{cols} values, more than its {held} bytes hold"),
        ));
    }
    Ok((npy, ts.type_char(), ts.size_field(), rows, cols))
}

fn read_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::file(path, format!("cannot read the array: {e}"))
}

/// Codes: f32 or f64, converted to f64.
pub fn read_codes(path: &Path) -> Result<Matrix<f64>> {
    let (npy, kind, size, rows, cols) = open(path)?;
    let values = match (kind, size) {
        (TypeChar::Float, 4) => {
            npy.into_vec::<f32>().map_err(read_error(path))?.into_iter().map(f64::from).collect()
        }
        (TypeChar::Float, 8) => npy.into_vec::<f64>().map_err(read_error(path))?,
        _ => return Err(Error::file(path, "codes must be float32 or float64")),
    };
    Ok(Matrix { values, rows, cols })
}

/// Factors: any integer dtype, converted to i64.
pub fn read_factors(path: &Path) -> Result<Matrix<i64>> {
    let (npy, kind, size, rows, cols) = open(path)?;
    let too_large =
        || Error::file(path, "holds a factor value too large for a signed 64-bit integer");
    let values: Vec<i64> = match (kind, size) {
        (TypeChar::Int, 1) => {
            npy.into_vec::<i8>().map_err(read_error(path))?.into_iter().map(i64::from).collect()
        }
        (TypeChar::Int, 2) => {
            npy.into_vec::<i16>().map_err(read_error(path))?.into_iter().map(i64::from).collect()
        }
        (TypeChar::Int, 4) => {
            npy.into_vec::<i32>().map_err(read_error(path))?.into_iter().map(i64::from).collect()
        }
        (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(read_error(path))?,
        (TypeChar::Uint, 1) => {
            npy.into_vec::<u8>().map_err(read_error(path))?.into_iter().map(i64::from).collect()
        }
        (TypeChar::Uint, 2) => {
            npy.into_vec::<u16>().map_err(read_error(path))?.into_iter().map(i64::from).collect()
        }
        (TypeChar::Uint, 4) => {
            npy.into_vec::<u32>().map_err(read_error(path))?.into_iter().map(i64::from).collect()
        }
        (TypeChar::Uint, 8) => npy
            .into_vec::<u64>()
            .map_err(read_error(path))?
            .into_iter()
            .map(|v| i64::try_from(v).map_err(|_| too_large()))
            .collect::<Result<_>>()?,
        _ => return Err(Error::file(path, "factors must be integers")),
    };
    Ok(Matrix { values, rows, cols })
}
