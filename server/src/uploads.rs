//! Unpacking an uploaded source tarball (`railyard up`), safely: only regular files,
//! directories and links that stay inside the tree; no absolute paths, no `..`, no device
//! files, FIFOs or other special entries; bounded in size and entry count. Anything else
//! refuses the whole upload, and nothing of it is kept.

use std::{
    fs,
    io::{BufReader, Read},
    path::{Component, Path, PathBuf},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnpackError {
    /// The upload is refused; the message says why (shown to the user).
    #[error("{0}")]
    Refused(String),
    #[error("could not unpack: {0}")]
    Io(String),
}

fn refused(msg: impl Into<String>) -> UnpackError {
    UnpackError::Refused(msg.into())
}

/// Limits on what an upload may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: usize,
}

/// `path` as a relative path of normal components (a leading `./` allowed).
fn inside(path: &Path) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused(format!("{} is an absolute path", path.display())));
            }
            Component::ParentDir => {
                return Err(refused(format!("{} leaves the upload (`..`)", path.display())));
            }
        }
    }
    Ok(out)
}

/// Unpacks the tarball (gzip-compressed or plain) at `archive` into `dest`, which must not
/// exist. On any error `dest` is removed.
pub fn unpack(archive: &Path, dest: &Path, limits: Limits) -> Result<usize, UnpackError> {
    let result = unpack_into(archive, dest, limits);
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

fn unpack_into(archive: &Path, dest: &Path, limits: Limits) -> Result<usize, UnpackError> {
    let io = |err: std::io::Error| UnpackError::Io(err.to_string());
    let mut file = BufReader::new(fs::File::open(archive).map_err(io)?);
    let mut magic = [0u8; 2];
    let gzip = file.get_mut().read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let file = BufReader::new(fs::File::open(archive).map_err(io)?);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    fs::create_dir_all(dest).map_err(io)?;
    let root = fs::canonicalize(dest).map_err(io)?;

    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(false);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(true);
    let bad_archive = |err: std::io::Error| refused(format!("not a valid tar archive: {err}"));
    let (mut total, mut count) = (0u64, 0usize);
    for entry in tar.entries().map_err(bad_archive)? {
        let mut entry = entry.map_err(bad_archive)?;
        count += 1;
        if count > limits.max_entries {
            return Err(refused(format!("more than {} files", limits.max_entries)));
        }
        let path = entry.path().map_err(bad_archive)?.into_owned();
        let relative = inside(&path)?;
        if relative.as_os_str().is_empty() {
            continue; // the archive's own `./`
        }
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(bad_archive)?
                    .ok_or_else(|| refused(format!("{} is a link to nothing", path.display())))?
                    .into_owned();
                let ok = if kind == tar::EntryType::Link {
                    inside(&target).is_ok()
                } else {
                    crate::sandbox::link_stays_inside(&relative, &target)
                };
                if !ok {
                    return Err(refused(format!(
                        "{} links out of the upload (to {})",
                        path.display(),
                        target.display()
                    )));
                }
            }
            other => {
                return Err(refused(format!(
                    "{} is a {} entry: only files, directories and links inside the upload are accepted",
                    path.display(),
                    match other {
                        tar::EntryType::Char | tar::EntryType::Block => "device file",
                        tar::EntryType::Fifo => "FIFO",
                        _ => "special",
                    }
                )));
            }
        }
        total = total.saturating_add(entry.header().size().unwrap_or(0));
        if total > limits.max_bytes {
            let limit = if limits.max_bytes >= 1024 * 1024 {
                format!("{} MiB", limits.max_bytes / (1024 * 1024))
            } else {
                format!("{} KiB", limits.max_bytes / 1024)
            };
            return Err(refused(format!(
                "the upload unpacks to more than {limit} (the upload limit, or the room left in the workspace's storage)"
            )));
        }
        let unpacked = entry
            .unpack_in(&root)
            .map_err(|err| refused(format!("{}: {err}", path.display())))?;
        if !unpacked {
            return Err(refused(format!("{} leaves the upload", path.display())));
        }
    }
    // Chains of links can point outside even when each looks inside on its own: resolve
    // every link for real.
    check_links(&root, &root)?;
    Ok(count)
}

fn check_links(root: &Path, dir: &Path) -> Result<(), UnpackError> {
    let io = |err: std::io::Error| UnpackError::Io(err.to_string());
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        let path = entry.path();
        if kind.is_symlink() {
            if let Ok(resolved) = fs::canonicalize(&path)
                && !resolved.starts_with(root)
            {
                let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
                return Err(refused(format!("{shown} links out of the upload")));
            }
        } else if kind.is_dir() {
            check_links(root, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::link_stays_inside;

    #[test]
    fn links_are_judged_from_where_they_are() {
        assert!(link_stays_inside(Path::new("a/b/link"), Path::new("../c")));
        assert!(link_stays_inside(Path::new("link"), Path::new("sub/file")));
        assert!(!link_stays_inside(Path::new("link"), Path::new("../etc/passwd")));
        assert!(!link_stays_inside(Path::new("a/link"), Path::new("../../x")));
        assert!(!link_stays_inside(Path::new("a/link"), Path::new("/etc/passwd")));
        assert!(inside(Path::new("./src/main.rs")).is_ok());
        assert!(inside(Path::new("/etc/passwd")).is_err());
        assert!(inside(Path::new("a/../../b")).is_err());
    }
}
