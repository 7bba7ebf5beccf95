//! A connection wrapper that gathers the writes of one scheduling round into one system call.
//!
//! HTTP/2 multiplexes many requests on a connection, and hyper's connection task flushes after
//! every poll. Under load the replies to a group of requests become ready one task after
//! another, the connection task runs between them, and each reply went out in its own `writev`
//! (one loopback TCP transmit, and one wakeup of the reader, per reply): a seventh of the
//! apiserver's CPU in the `api` benchmark. [`Coalesce`] copies writes into its own buffer and,
//! on the first flush of newly buffered bytes, yields once: it wakes its own task and returns
//! `Pending`, so tokio runs the task again after the tasks already queued on that worker
//! (whose replies then join the buffer), and the second flush writes everything at once.
//! With nothing else queued the yield costs one extra poll, not a timer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes buffered before a write drains the buffer to the socket instead of waiting for the
/// flush (the size of a few HTTP/2 frames).
const MAX_BUFFERED: usize = 64 * 1024;

/// An I/O object whose writes are gathered until a flush, which goes out after one yield.
#[derive(Debug)]
pub struct Coalesce<S> {
    inner: S,
    buf: Vec<u8>,
    /// The bytes of `buf` already written to `inner`.
    written: usize,
    /// Whether this flush has yielded already.
    yielded: bool,
}

impl<S> Coalesce<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, buf: Vec::new(), written: 0, yielded: false }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Bytes buffered and not yet written to the inner I/O object.
    fn pending(&self) -> usize {
        self.buf.len() - self.written
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes the buffer to the inner I/O object until it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Makes room for `len` more bytes: drains the buffer first if they would not fit.
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<()>> {
        if self.pending() > 0 && self.pending() + len > MAX_BUFFERED {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx, data.len()))?;
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let len = bufs.iter().map(|b| b.len()).sum();
        ready!(this.poll_room(cx, len))?;
        for b in bufs {
            this.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending() > 0 {
            if !this.yielded {
                this.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ready!(this.poll_drain(cx))?;
        }
        this.yielded = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn should_deliver_every_byte_in_order_once_flushed() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut w = Coalesce::new(a);
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writer = async {
            for chunk in payload.chunks(1_000) {
                w.write_all(chunk).await.unwrap();
            }
            w.flush().await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut got = Vec::new();
        let reader = b.read_to_end(&mut got);
        let (_, read) = tokio::join!(writer, reader);
        read.unwrap();
        assert_eq!(got, payload);
    }

    #[tokio::test]
    async fn should_yield_once_before_a_flush_sends() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut w = Coalesce::new(a);
        w.write_all(b"hi").await.unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut w).poll_flush(&mut cx).is_pending(), "the first flush did not yield");
        assert!(matches!(Pin::new(&mut w).poll_flush(&mut cx), Poll::Ready(Ok(()))), "the second flush did not send");
        let mut got = [0u8; 2];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi");
        // Nothing buffered: a flush goes straight through.
        assert!(matches!(Pin::new(&mut w).poll_flush(&mut cx), Poll::Ready(Ok(()))));
    }

    #[tokio::test]
    async fn should_hold_writes_until_flush() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut w = Coalesce::new(a);
        w.write_all(b"hello").await.unwrap();
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), b.read(&mut byte)).await;
        assert!(early.is_err(), "bytes arrived before the flush");
        w.flush().await.unwrap();
        let mut got = [0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
    }
}
