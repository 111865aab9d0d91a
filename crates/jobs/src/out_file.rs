//! Writing a file the user named (`--report`, `--output`, `data export`) without harming what is there.
//!
//! A regular file (or a new path) is written to a temporary file beside it and renamed over it when
//! complete, so a failed or interrupted run leaves the old file, never half of a new one, and no
//! temporary file. Anything else is not replaced: a character device or a FIFO (`/dev/null`,
//! `/dev/stdout`, a pipe) is written through, a symlink is followed and its target written the same
//! way (the link stays a link), and a directory, a block device or a socket is refused with the fix.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::JobError;

type Result<T, E = JobError> = std::result::Result<T, E>;

/// The request field a flag names (`--report` → `report`), for a refusal.
fn field(flag: &str) -> &'static str {
    match flag {
        "--report" => "report",
        _ => "output",
    }
}

/// Refuses the path named by `flag`.
macro_rules! refuse {
    ($flag:expr, $($arg:tt)*) => {
        return Err(JobError::invalid(field($flag), format!($($arg)*)))
    };
}

/// An I/O error on the path named by a flag, with what was being done and the fix.
fn io(context: String) -> impl FnOnce(std::io::Error) -> JobError {
    move |e| JobError::io(context, e)
}

/// Symlinks followed at most before giving up (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// A file being written for the user: the place to write, and how it is put in place.
#[derive(Debug)]
pub struct OutFile {
    /// The path as the user gave it (for messages).
    shown: PathBuf,
    /// The flag that named it, for messages ("--report").
    flag: String,
    /// Where the bytes go: the temporary file, or the device / FIFO itself.
    write_to: PathBuf,
    /// With a temporary file: the regular file (or new path) it is renamed to.
    rename_to: Option<PathBuf>,
    /// Set once the temporary file has been renamed (or when there is none).
    done: bool,
}

impl OutFile {
    /// Prepares writing `path` (named by `flag` in messages); refuses what must not be written.
    pub fn prepare(path: &Path, flag: &str) -> Result<OutFile> {
        let shown = path.to_path_buf();
        let (target, meta) = resolve(path, flag)?;
        let mut out = OutFile {
            shown,
            flag: flag.to_string(),
            write_to: target.clone(),
            rename_to: None,
            done: true,
        };
        let ft = meta.as_ref().map(|m| m.file_type());
        match ft {
            None => {}
            Some(t) if t.is_file() => {}
            Some(t) if t.is_dir() => refuse!(
                flag,
                "{flag} {}: is a directory; give a file path inside it, e.g. {}",
                path.display(),
                path.join("out").with_extension(ext_hint(flag)).display()
            ),
            Some(t) if is_stream(&t) => return Ok(out),
            Some(_) => refuse!(
                flag,
                "{flag} {}: is not a regular file, a character device or a FIFO (a block device or a socket?): give a file path",
                path.display()
            ),
        }
        // A regular file or a new path: a temporary file in the same directory (a rename does not
        // cross file systems), created afresh so that nothing already at that name is written.
        let name = target.file_name().ok_or_else(|| {
            JobError::invalid(
                field(flag),
                format!("{flag} {}: give a file name, not a folder", path.display()),
            )
        })?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = target.with_file_name(tmp_name);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(format!(
                "cannot write {flag} {}: check the folder exists and is writable",
                path.display()
            )))?;
        // The replacement keeps the permissions of the file it replaces.
        if let Some(m) = &meta {
            let _ = f.set_permissions(m.permissions());
        }
        drop(f);
        out.write_to = tmp;
        out.rename_to = Some(target);
        out.done = false;
        Ok(out)
    }

    /// The path to write the bytes to (a temporary file, or the device itself).
    pub fn path(&self) -> &Path {
        &self.write_to
    }

    /// Opens [`OutFile::path`] for writing (emptied when it is the temporary file).
    pub fn open(&self) -> Result<File> {
        let mut o = OpenOptions::new();
        o.write(true);
        // A device or a FIFO is neither created nor truncated: it is only written.
        if self.rename_to.is_some() {
            o.truncate(true);
        }
        o.open(&self.write_to).map_err(io(format!(
            "cannot write {} {}: check it is writable",
            self.flag,
            self.shown.display()
        )))
    }

    /// Puts the written file in place (renames the temporary file over the target). Call it after
    /// the file is closed; on failure the temporary file is removed.
    pub fn commit(mut self) -> Result<()> {
        let Some(dest) = self.rename_to.clone() else {
            return Ok(());
        };
        // On failure `done` stays false, so `drop` removes the temporary file.
        std::fs::rename(&self.write_to, &dest).map_err(io(format!(
            "cannot write {} {}: the finished file could not be moved into place",
            self.flag,
            self.shown.display()
        )))?;
        self.done = true;
        Ok(())
    }

    /// Writes `bytes` to `path` as a whole (see the module's rules).
    pub fn write_all(path: &Path, flag: &str, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        let out = OutFile::prepare(path, flag)?;
        let mut f = out.open()?;
        f.write_all(bytes)
            .and_then(|()| f.flush())
            .map_err(io(format!(
                "writing {flag} {}: check the disk has room",
                path.display()
            )))?;
        drop(f);
        out.commit()
    }
}

impl Drop for OutFile {
    /// An unfinished (failed, interrupted) write leaves no temporary file behind.
    fn drop(&mut self) {
        if !self.done && self.rename_to.is_some() {
            let _ = std::fs::remove_file(&self.write_to);
        }
    }
}

/// A suffix for the directory example in messages.
fn ext_hint(flag: &str) -> &'static str {
    match flag {
        "--report" => "html",
        _ => "csv",
    }
}

/// Whether `path` is (or links to) a character device or a FIFO, which are written through.
pub fn is_stream_path(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| is_stream(&m.file_type()))
}

#[cfg(unix)]
fn is_stream(t: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    t.is_char_device() || t.is_fifo()
}

#[cfg(not(unix))]
fn is_stream(_: &std::fs::FileType) -> bool {
    false
}

/// Follows symlinks from `path` to what they end at: its path and, unless nothing is there yet
/// (a new file, or a dangling link's target), its metadata.
fn resolve(path: &Path, flag: &str) -> Result<(PathBuf, Option<std::fs::Metadata>)> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((p, None)),
            Err(e) => {
                return Err(io(format!(
                    "cannot write {flag} {}: check the folder exists and is readable",
                    path.display()
                ))(e))
            }
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p).map_err(io(format!(
                    "cannot follow the symlink {flag} {}",
                    path.display()
                )))?;
                // A relative link is relative to the folder holding the link.
                p = match p.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(m) => return Ok((p, Some(m))),
        }
    }
    refuse!(
        flag,
        "{flag} {}: more than {MAX_LINKS} symlinks in a row (a loop?): give the file's real path",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::OutFile;
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vectura-outfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(d: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_final_rename_removes_the_temporary_file() {
        let d = dir("rename");
        let target = d.join("out.csv");
        std::fs::write(&target, "old").unwrap();
        let f = OutFile::prepare(&target, "--output").unwrap();
        assert_ne!(f.path(), target, "a regular file is written beside it");
        std::fs::write(f.path(), "complete new content").unwrap();
        // Meanwhile the target became a folder holding a file: a file cannot be renamed over it.
        std::fs::remove_file(&target).unwrap();
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        let err = format!("{:#}", f.commit().unwrap_err());
        assert!(
            err.contains("--output") && err.contains("moved into place"),
            "{err}"
        );
        assert_eq!(names(&d), ["out.csv"], "no temporary file is left");
    }

    #[test]
    fn an_unfinished_write_leaves_the_old_file_and_no_temporary_file() {
        let d = dir("drop");
        let target = d.join("report.html");
        std::fs::write(&target, "old").unwrap();
        {
            let f = OutFile::prepare(&target, "--report").unwrap();
            std::fs::write(f.path(), "half").unwrap();
            // Dropped without commit, as when the run fails or is interrupted.
        }
        assert_eq!(names(&d), ["report.html"]);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        OutFile::write_all(&target, "--report", b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(names(&d), ["report.html"]);
    }
}
