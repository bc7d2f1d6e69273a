//! Images inside zip archives, read in place.
//!
//! ELEVATER's datasets ship their images in zip archives and name them `train.zip@dir/img.jpg`
//! in their index files; vision-datasets' `FileReader` opens the archive and reads the member
//! without unpacking (splitting the path at its first `@`). [`ZipArchives`] does the same.
//!
//! Opening an archive parses its central directory, which for the large ELEVATER archives
//! (patch-camelyon: 262,144 images) takes a while and some memory, so each archive is opened
//! once per cache and kept open. Parallel loaders never wait on each other: a read clones the
//! cached handle (the parsed directory is shared behind an `Arc`) and reads the member with
//! positional I/O on the shared file, so the lock is held only for the map lookup.

use super::dataset::ImageSource;
use super::image::{decode_bytes, decode_file, ExifOrientation, RgbImage8};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use zip::ZipArchive;

/// Why a zip member could not be read; every variant names the archive (and member).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive file could not be opened.
    #[error("cannot open zip archive {archive}: {source}")]
    Open {
        /// The archive.
        archive: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not a readable zip archive.
    #[error("cannot read zip archive {archive}: {source}")]
    Format {
        /// The archive.
        archive: PathBuf,
        /// The zip reader's error.
        source: zip::result::ZipError,
    },
    /// The archive has no member of that name.
    #[error("zip archive {archive} has no member {member}")]
    MissingMember {
        /// The archive.
        archive: PathBuf,
        /// The member asked for.
        member: String,
    },
    /// The member exists but could not be extracted (unsupported compression, corrupt data).
    #[error("cannot read member {member} of zip archive {archive}: {source}")]
    Member {
        /// The archive.
        archive: PathBuf,
        /// The member.
        member: String,
        /// The underlying failure.
        source: std::io::Error,
    },
}

/// A cache of open zip archives, shared by all threads that read from it.
#[derive(Default)]
pub struct ZipArchives {
    open: Mutex<HashMap<PathBuf, ZipArchive<SharedFile>>>,
}

impl ZipArchives {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide cache used by [`load_image_source`].
    pub fn global() -> &'static ZipArchives {
        static GLOBAL: OnceLock<ZipArchives> = OnceLock::new();
        GLOBAL.get_or_init(ZipArchives::new)
    }

    /// The bytes of `member` inside `archive`.
    pub fn read(&self, archive: &Path, member: &str) -> Result<Vec<u8>, ArchiveError> {
        let mut handle = self.handle(archive)?;
        let mut file = match handle.by_name(member) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(ArchiveError::MissingMember {
                    archive: archive.to_path_buf(),
                    member: member.to_string(),
                })
            }
            Err(e) => {
                return Err(ArchiveError::Member {
                    archive: archive.to_path_buf(),
                    member: member.to_string(),
                    source: e.into(),
                })
            }
        };
        let mut bytes = Vec::with_capacity(usize::try_from(file.size()).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|source| ArchiveError::Member {
                archive: archive.to_path_buf(),
                member: member.to_string(),
                source,
            })?;
        Ok(bytes)
    }

    /// Whether `archive` holds a member named `member` (reads only the directory).
    pub fn contains(&self, archive: &Path, member: &str) -> Result<bool, ArchiveError> {
        Ok(self.handle(archive)?.index_for_name(member).is_some())
    }

    /// A handle on the open archive, opening and caching it on first use.
    fn handle(&self, archive: &Path) -> Result<ZipArchive<SharedFile>, ArchiveError> {
        if let Some(open) = self.lock().get(archive) {
            return Ok(open.clone());
        }
        // Parse outside the lock: a large directory must not stall reads from other archives.
        let opened = open_archive(archive)?;
        Ok(self
            .lock()
            .entry(archive.to_path_buf())
            .or_insert(opened)
            .clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, ZipArchive<SharedFile>>> {
        // A panic while holding the lock cannot leave the map half-updated: recover it.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn open_archive(archive: &Path) -> Result<ZipArchive<SharedFile>, ArchiveError> {
    let file = File::open(archive).map_err(|source| ArchiveError::Open {
        archive: archive.to_path_buf(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| ArchiveError::Open {
            archive: archive.to_path_buf(),
            source,
        })?
        .len();
    let shared = SharedFile {
        file: Arc::new(file),
        len,
        position: 0,
    };
    ZipArchive::new(shared).map_err(|source| ArchiveError::Format {
        archive: archive.to_path_buf(),
        source,
    })
}

/// Splits an ELEVATER image path `archive.zip@member` at its first `@`, as vision-datasets'
/// `FileReader` does; `None` for a plain path.
pub fn split_archive_path(path: &str) -> Option<(&str, &str)> {
    path.split_once('@')
}

/// Reads and decodes the image of `source` (a file or a zip member, through
/// [`ZipArchives::global`]) with the given EXIF handling.
pub fn load_image_source(
    source: &ImageSource,
    orientation: ExifOrientation,
) -> anyhow::Result<RgbImage8> {
    match source {
        ImageSource::File(path) => Ok(decode_file(path, orientation)?),
        ImageSource::Zip { archive, member } => {
            let bytes = ZipArchives::global().read(archive, member)?;
            let name = format!("{}@{member}", archive.display());
            Ok(decode_bytes(&bytes, &name, orientation)?)
        }
        ImageSource::Procedural(_) => {
            anyhow::bail!("image {source} is procedural: its dataset must draw it")
        }
    }
}

/// An open file read at explicit offsets, so that clones share it without sharing a cursor.
#[derive(Clone, Debug)]
struct SharedFile {
    file: Arc<File>,
    len: u64,
    position: u64,
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = read_at(&self.file, buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let Some(target) = target else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the archive",
            ));
        };
        self.position = target;
        Ok(target)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;

    /// Writes a zip of `members` (name, bytes, compression) with the zip crate.
    fn write_zip(path: &Path, members: &[(&str, &[u8], CompressionMethod)]) {
        let mut writer = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, bytes, method) in members {
            let options = SimpleFileOptions::default().compression_method(*method);
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap();
    }

    fn temp_zip(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("mvlpt-archive-{tag}-{}.zip", std::process::id()))
    }

    #[test]
    fn reads_stored_and_deflated_members_from_many_threads() {
        let path = temp_zip("read");
        let stored: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let deflated = vec![7u8; 10_000];
        write_zip(
            &path,
            &[
                ("dir/a.bin", &stored, CompressionMethod::Stored),
                ("b.bin", &deflated, CompressionMethod::Deflated),
            ],
        );
        let cache = ZipArchives::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10 {
                        assert_eq!(cache.read(&path, "dir/a.bin").unwrap(), stored);
                        assert_eq!(cache.read(&path, "b.bin").unwrap(), deflated);
                    }
                });
            }
        });
        assert!(cache.contains(&path, "b.bin").unwrap());
        assert!(!cache.contains(&path, "a.bin").unwrap());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn errors_name_the_archive_and_member() {
        let path = temp_zip("errors");
        write_zip(&path, &[("x.bin", b"x", CompressionMethod::Stored)]);
        let cache = ZipArchives::new();
        let missing = cache.read(&path, "y.bin").unwrap_err().to_string();
        assert!(missing.contains("has no member y.bin"), "{missing}");
        assert!(missing.contains(&path.display().to_string()), "{missing}");
        let absent = cache
            .read(&path.with_extension("nope"), "x.bin")
            .unwrap_err();
        assert!(matches!(absent, ArchiveError::Open { .. }), "{absent}");
        let not_zip = std::env::temp_dir().join(format!("mvlpt-notzip-{}", std::process::id()));
        std::fs::write(&not_zip, b"plain text, no zip").unwrap();
        let format = cache.read(&not_zip, "x.bin").unwrap_err();
        assert!(matches!(format, ArchiveError::Format { .. }), "{format}");
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&not_zip).unwrap();
    }
}
