//! Result objects: a `#[repr(C)]` view the caller reads, followed by an arena that owns every
//! string, byte buffer and array the view points into. One allocation is returned and one
//! `rapidmq_<object>_free` releases everything.

use std::any::Any;

use crate::buffer::RapidmqSlice;

/// Keeps the memory behind the views of one result object alive.
#[derive(Default)]
pub(crate) struct Arena {
    kept: Vec<Box<dyn Any>>,
}

impl Arena {
    /// Keeps `items` and returns a pointer to the first one (NULL when empty) and the count.
    /// Moving a `Vec` does not move its elements, so the pointer stays valid.
    pub(crate) fn array<T: 'static>(&mut self, items: Vec<T>) -> (*const T, usize) {
        if items.is_empty() {
            return (std::ptr::null(), 0);
        }
        let ptr = items.as_ptr();
        let len = items.len();
        self.kept.push(Box::new(items));
        (ptr, len)
    }

    /// Keeps `value` alive with the views into it handed out.
    pub(crate) fn keep<T: 'static>(&mut self, value: T) {
        self.kept.push(Box::new(value));
    }

    /// Takes back the first kept value of type `T`; the views into it are invalid afterwards.
    pub(crate) fn take<T: 'static>(&mut self) -> Option<T> {
        let at = self.kept.iter().position(|kept| kept.is::<T>())?;
        self.kept
            .remove(at)
            .downcast::<T>()
            .ok()
            .map(|value| *value)
    }

    /// Keeps `value` (a `String`, `Vec<u8>` or `Bytes`) and returns a view of its bytes.
    pub(crate) fn bytes<B: AsRef<[u8]> + 'static>(&mut self, value: B) -> RapidmqSlice {
        let view = RapidmqSlice::of(value.as_ref());
        if view.len > 0 {
            self.kept.push(Box::new(value));
        }
        view
    }
}

/// A view followed by its arena. `view` comes first so a `*mut Owned<V>` is also a `*mut V`.
#[repr(C)]
pub(crate) struct Owned<V> {
    pub(crate) view: V,
    arena: Arena,
}

impl<V> Owned<V> {
    /// Boxes the view with its arena and returns the pointer handed to the caller.
    pub(crate) fn into_raw(view: V, arena: Arena) -> *mut V {
        Box::into_raw(Box::new(Owned { view, arena })).cast::<V>()
    }

    /// The arena behind a pointer [`Owned::into_raw`] returned (`None` for NULL).
    ///
    /// # Safety
    /// `ptr` comes from `Owned::<V>::into_raw`, was not freed, and nothing else uses it now.
    pub(crate) unsafe fn arena_of<'a>(ptr: *mut V) -> Option<&'a mut Arena>
    where
        V: 'a,
    {
        unsafe { ptr.cast::<Owned<V>>().as_mut() }.map(|owned| &mut owned.arena)
    }

    /// Frees what [`Owned::into_raw`] returned; NULL is ignored.
    ///
    /// # Safety
    /// `ptr` comes from `Owned::<V>::into_raw` and was not freed already.
    pub(crate) unsafe fn free(ptr: *mut V) {
        if !ptr.is_null() {
            drop(unsafe { Box::from_raw(ptr.cast::<Owned<V>>()) });
        }
    }
}
