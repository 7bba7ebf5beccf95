//! Locks that outlive a panicking holder: a poisoned [`Mutex`] or [`RwLock`] is taken over
//! instead of spreading the panic to every later user.
//!
//! Berth's critical sections leave plain data behind, never a half-kept invariant that the
//! code relies on, so serving what the panicking holder left is better than failing every
//! caller after it. Use these instead of `lock().unwrap()` or a local
//! `unwrap_or_else(PoisonError::into_inner)` helper.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// [`Mutex::lock`], taking over a poisoned mutex.
pub trait MutexExt<T: ?Sized> {
    /// Locks the mutex, recovering the guard if a holder panicked.
    fn lock_or_recover(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> MutexExt<T> for Mutex<T> {
    fn lock_or_recover(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`RwLock::read`] and [`RwLock::write`], taking over a poisoned lock.
pub trait RwLockExt<T: ?Sized> {
    /// Takes a read lock, recovering the guard if a writer panicked.
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T>;
    /// Takes the write lock, recovering the guard if a writer panicked.
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn poison<L: Send + Sync + 'static>(lock: &Arc<L>, hold: fn(&L)) {
        let l = lock.clone();
        let _ = std::thread::spawn(move || {
            hold(&l);
        })
        .join();
    }

    #[test]
    fn should_recover_a_poisoned_mutex_with_its_data() {
        let m = Arc::new(Mutex::new(1));
        poison(&m, |m| {
            let mut g = m.lock().unwrap();
            *g = 2;
            panic!("poison");
        });
        assert!(m.is_poisoned());
        assert_eq!(*m.lock_or_recover(), 2);
    }

    #[test]
    fn should_recover_a_poisoned_rwlock_for_reads_and_writes() {
        let l = Arc::new(RwLock::new(1));
        poison(&l, |l| {
            let mut g = l.write().unwrap();
            *g = 2;
            panic!("poison");
        });
        assert!(l.is_poisoned());
        assert_eq!(*l.read_or_recover(), 2);
        *l.write_or_recover() = 3;
        assert_eq!(*l.read_or_recover(), 3);
    }
}
