//! NPY files in and out (SPEC §7: little-endian f32, C order, 2-D), through `npyz`.
//! Reads explain what is wrong with a file in one line; writes go to a temporary file that is
//! renamed into place, so a failed command never leaves a half-written output.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use npyz::{DType, NpyFile, Order, WriterBuilder};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

pub fn read_matrix(path: &Path) -> Result<Matrix> {
    let (npy, shape) = open_f32(path)?;
    if shape.len() != 2 {
        return Err(Error::file(
            path,
            format!(
                "array has {} dimensions {shape:?}: a matrix must be 2-D (reshape it)",
                shape.len()
            ),
        ));
    }
    let (rows, cols) = (shape[0], shape[1]);
    let order = npy.order();
    let m = Matrix::new(rows, cols, read_data(path, npy, rows * cols)?)?;
    Ok(match order {
        Order::C => m,
        // Column-major data is the transpose read row by row.
        Order::Fortran => Matrix::new(cols, rows, m.data)?.transpose(),
    })
}

/// An f32 array of any number of dimensions, C order: its shape and its values.
pub fn read_array(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let (npy, shape) = open_f32(path)?;
    if npy.order() == Order::Fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(Error::file(
            path,
            "array is in Fortran order: save it in C order (np.ascontiguousarray)",
        ));
    }
    let data = read_data(path, npy, shape.iter().product())?;
    Ok((shape, data))
}

fn corrupt(path: &Path, e: std::io::Error) -> Error {
    Error::file(
        path,
        format!("not a valid NPY file ({e}): write it with numpy.save"),
    )
}

/// Open an NPY file whose dtype must be little-endian f32; its shape.
fn open_f32(path: &Path) -> Result<(NpyFile<BufReader<File>>, Vec<usize>)> {
    let file = File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let npy = NpyFile::new(BufReader::new(file)).map_err(|e| corrupt(path, e))?;
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = npy.dtype();
    let is_f32 = matches!(&dtype, DType::Plain(t) if t.to_string().ends_with("f4"));
    if !is_f32 {
        return Err(Error::file(
            path,
            format!(
                "dtype {} is not supported: save the array as float32 (arr.astype(np.float32))",
                dtype_name(&dtype)
            ),
        ));
    }
    Ok((npy, shape))
}

/// The `count` values of an opened file.
fn read_data(path: &Path, npy: NpyFile<BufReader<File>>, count: usize) -> Result<Vec<f32>> {
    let truncated = || {
        Error::file(
            path,
            "data is shorter than its header says: the file is truncated",
        )
    };
    let data: Vec<f32> = npy.into_vec().map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => truncated(),
        _ => corrupt(path, e),
    })?;
    if data.len() != count {
        return Err(truncated());
    }
    Ok(data)
}

fn dtype_name(d: &DType) -> String {
    match d {
        DType::Plain(t) => t.to_string(),
        DType::Array(..) => "sub-array".into(),
        DType::Record(..) => "structured".into(),
    }
}

/// Write `m` as a little-endian f32 C-order NPY file, atomically.
pub fn write_matrix(path: &Path, m: &Matrix) -> Result<()> {
    write_array(path, &[m.rows, m.cols], &m.data)
}

/// Write an f32 array of the given shape (C order) as an NPY file, atomically.
pub fn write_array(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    write_atomically(path, |w| {
        let mut npy = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&dims)
            .writer(w)
            .begin_nd()?;
        npy.extend(data.iter().copied())?;
        npy.finish()
    })
}

/// Write through `body` into a temporary file beside `path`, then rename it into place.
pub fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path);
    let fail = |e: std::io::Error| Error::file(path, format!("cannot write: {e}"));
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        body(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

/// Write bytes to `path` atomically (JSON reports and the like).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |w| w.write_all(bytes))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
