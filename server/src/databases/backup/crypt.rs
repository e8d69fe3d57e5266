//! The backup file: a `pg_dump -Fc` stream sealed in authenticated chunks.
//!
//! ```text
//! "RYBKUP01" | u32 header length | header (JSON: database, backup, created_at)
//!            | u32 key length    | the backup's data key, sealed by the key ring with the header as AAD
//!            | chunks: u32 length | AES-256-GCM(data key, nonce = chunk number, AAD = last?) ...
//! ```
//!
//! Each backup has a data key of its own (so chunk numbers are safe nonces); the key ring
//! seals it bound to the header, so a header edited or a file moved to another backup does
//! not open. The last chunk says it is last: a file cut short fails too. Nothing comes out
//! of a chunk that fails authentication.

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::crypto::KeyRing;

const MAGIC: &[u8; 8] = b"RYBKUP01";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 1 << 20;
const TAG: usize = 16;

/// What a backup file says it is; bound to its data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The database's name (`app_...`, or `railyard` for the control plane's own).
    pub database: String,
    pub backup: uuid::Uuid,
    pub created_at: DateTime<Utc>,
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn aad(last: bool) -> Aad<[u8; 1]> {
    Aad::from([u8::from(last)])
}

async fn read_full(reader: &mut (impl AsyncRead + Unpin), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Seals everything `plain` reads into `out`; returns the bytes written.
pub async fn seal(
    keys: &KeyRing,
    header: &Header,
    mut plain: impl AsyncRead + Unpin,
    mut out: impl AsyncWrite + Unpin,
) -> anyhow::Result<u64> {
    let header_json = serde_json::to_vec(header)?;
    let mut data_key = [0u8; 32];
    keys.random(&mut data_key)?;
    let wrapped = keys.encrypt(&data_key, &header_json)?;
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &data_key).map_err(|_| anyhow::anyhow!("data key"))?);
    let mut written = 0u64;
    let mut head = Vec::with_capacity(16 + header_json.len() + wrapped.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
    head.extend_from_slice(&header_json);
    head.extend_from_slice(&(wrapped.len() as u32).to_be_bytes());
    head.extend_from_slice(&wrapped);
    out.write_all(&head).await.context("writing the backup")?;
    written += head.len() as u64;

    let mut buf = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut len = read_full(&mut plain, &mut buf)
        .await
        .context("reading pg_dump's output")?;
    let mut counter = 0u64;
    loop {
        // Read ahead: a chunk knows it is the last when nothing follows.
        let next_len = if len == CHUNK {
            read_full(&mut plain, &mut next)
                .await
                .context("reading pg_dump's output")?
        } else {
            0
        };
        let last = next_len == 0;
        let mut sealed = Vec::with_capacity(len + TAG);
        sealed.extend_from_slice(&buf[..len]);
        key.seal_in_place_append_tag(nonce(counter), aad(last), &mut sealed)
            .map_err(|_| anyhow::anyhow!("sealing a chunk failed"))?;
        let mut frame = Vec::with_capacity(5);
        frame.extend_from_slice(&((sealed.len() + 1) as u32).to_be_bytes());
        frame.push(u8::from(last));
        out.write_all(&frame).await.context("writing the backup")?;
        out.write_all(&sealed).await.context("writing the backup")?;
        written += 5 + sealed.len() as u64;
        if last {
            break;
        }
        counter += 1;
        std::mem::swap(&mut buf, &mut next);
        len = next_len;
    }
    out.flush().await.context("writing the backup")?;
    out.shutdown().await.context("writing the backup")?;
    Ok(written)
}

/// Opens a backup file into `plain`, checking its header is `expected` when given. Fails
/// at the first chunk that does not authenticate (nothing of it is written), or when the
/// file ends before its last chunk or goes on after it.
pub async fn open(
    keys: &KeyRing,
    expected: Option<&Header>,
    mut sealed: impl AsyncRead + Unpin,
    mut plain: impl AsyncWrite + Unpin,
) -> anyhow::Result<Header> {
    let mut magic = [0u8; 8];
    sealed
        .read_exact(&mut magic)
        .await
        .context("not a Railyard backup (too short)")?;
    if &magic != MAGIC {
        bail!("not a Railyard backup (unknown format)");
    }
    let header_json = read_frame(&mut sealed, 64 * 1024)
        .await?
        .context("the backup has no header")?;
    let header: Header = serde_json::from_slice(&header_json).context("the backup's header is damaged")?;
    if let Some(expected) = expected
        && expected != &header
    {
        bail!(
            "the file is the backup {} of {}, not this backup",
            header.backup,
            header.database
        );
    }
    let wrapped = read_frame(&mut sealed, 4096)
        .await?
        .context("the backup has no key")?;
    let data_key = keys.decrypt(&wrapped, &header_json).context(
        "the backup's key does not open: the file was altered, or it was made with another master key",
    )?;
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &data_key).map_err(|_| anyhow::anyhow!("data key"))?);
    let mut counter = 0u64;
    loop {
        let Some(mut chunk) = read_frame(&mut sealed, 1 + CHUNK + TAG).await? else {
            bail!("the backup is cut short: it ends before its last chunk");
        };
        let last = match chunk.remove(0) {
            0 => false,
            1 => true,
            _ => bail!("chunk {counter} of the backup is damaged"),
        };
        let opened = key
            .open_in_place(nonce(counter), aad(last), &mut chunk)
            .map_err(|_| {
                anyhow::anyhow!("chunk {counter} of the backup fails authentication: the file was altered")
            })?;
        plain.write_all(opened).await?;
        if last {
            let mut rest = [0u8; 1];
            if sealed.read(&mut rest).await? != 0 {
                bail!("the backup goes on after its last chunk: the file was altered");
            }
            break;
        }
        counter += 1;
    }
    plain.flush().await?;
    plain.shutdown().await?;
    Ok(header)
}

/// A length-prefixed frame; `None` at a clean end of the file.
async fn read_frame(reader: &mut (impl AsyncRead + Unpin), max: usize) -> anyhow::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match read_full(reader, &mut len).await? {
        0 => return Ok(None),
        4 => {}
        _ => bail!("the backup is cut short"),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max || len < 1 {
        bail!("the backup is damaged (a frame of {len} bytes)");
    }
    let mut buf = vec![0u8; len];
    if read_full(reader, &mut buf).await? != len {
        bail!("the backup is cut short");
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::from_entries(&[(1, [7u8; 32])]).unwrap()
    }

    fn header() -> Header {
        Header {
            database: "app_x".to_owned(),
            backup: uuid::Uuid::nil(),
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    async fn sealed_of(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(&ring(), &header(), data, &mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn round_trips_at_chunk_boundaries() {
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let sealed = sealed_of(&data).await;
            let mut plain = Vec::new();
            let got = open(&ring(), Some(&header()), &sealed[..], &mut plain)
                .await
                .unwrap();
            assert_eq!(got, header());
            assert_eq!(plain, data, "size {size}");
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_anywhere_fails() {
        let data = vec![42u8; CHUNK + 100];
        let sealed = sealed_of(&data).await;
        for at in [10, 30, 200, sealed.len() / 2, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            let mut plain = Vec::new();
            assert!(
                open(&ring(), Some(&header()), &bad[..], &mut plain)
                    .await
                    .is_err(),
                "byte {at}"
            );
        }
    }

    #[tokio::test]
    async fn a_cut_file_or_another_header_fails() {
        let data = vec![1u8; 2 * CHUNK + 5];
        let sealed = sealed_of(&data).await;
        let mut plain = Vec::new();
        let err = open(&ring(), None, &sealed[..sealed.len() - 21], &mut plain)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        // Without its last chunk (a whole frame gone) it is cut short too.
        let last_frame = 5 + 5 + TAG;
        let err = open(
            &ring(),
            None,
            &sealed[..sealed.len() - last_frame],
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        let other = Header {
            database: "app_y".to_owned(),
            ..header()
        };
        let err = open(&ring(), Some(&other), &sealed[..], &mut Vec::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not this backup"), "{err}");
        let wrong = KeyRing::from_entries(&[(1, [8u8; 32])]).unwrap();
        assert!(open(&wrong, None, &sealed[..], &mut Vec::new()).await.is_err());
    }
}
