/*
 * ferryman._speedups: the two tight loops of the observability batches, compiled.
 *
 * Optional. The pure-Python loops in ferryman/observability/{accesslog,metrics}.py are the
 * reference; these do the same work on the recorder's entries (layout: recorder.E_*) and give the
 * same results byte for byte (tests/unit/observability/test_speedups.py compares them on random
 * batches). Both functions stop at the first entry they do not handle (another consumer's entry,
 * an unexpected type) and return its index; the Python loop does the rest. Nothing here keeps
 * state between calls.
 *
 * Entry layout used here (recorder.E_*): 0 mask, 1 labels, 2 line key, 3 size, 4 request size,
 * 5 start (ns), 6 duration (ns), 7 retries, 8 client ip, 10 user, 11 tls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define E_MASK 0
#define E_LABELS 1
#define E_LINE 2
#define E_SIZE 3
#define E_REQ_SIZE 4
#define E_START 5
#define E_DURATION 6
#define E_RETRIES 7
#define E_CLIENT_IP 8
#define E_USER 10
#define E_TLS 11
#define E_MIN_LEN 12

#define NS_PER_S 1000000000LL

/* ------------------------------------------------------------------ output buffer (a bytes object) */

typedef struct {
    PyObject *bytes;
    char *p;
    Py_ssize_t len;
    Py_ssize_t cap;
} Out;

static int out_init(Out *o, Py_ssize_t cap) {
    o->bytes = PyBytes_FromStringAndSize(NULL, cap);
    if (o->bytes == NULL) return -1;
    o->p = PyBytes_AS_STRING(o->bytes);
    o->len = 0;
    o->cap = cap;
    return 0;
}

static int out_reserve(Out *o, Py_ssize_t need) {
    if (o->len + need <= o->cap) return 0;
    Py_ssize_t cap = o->cap * 2;
    while (cap < o->len + need) cap *= 2;
    if (_PyBytes_Resize(&o->bytes, cap) < 0) return -1;
    o->p = PyBytes_AS_STRING(o->bytes);
    o->cap = cap;
    return 0;
}

static inline void out_raw(Out *o, const char *s, Py_ssize_t n) {
    memcpy(o->p + o->len, s, (size_t)n);
    o->len += n;
}

/* Appends a str as UTF-8 (its UTF-8 form is cached in the object after the first use). */
static int out_str(Out *o, PyObject *s) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) return -1;
    if (out_reserve(o, n) < 0) return -1;
    out_raw(o, u, n);
    return 0;
}

static int out_int(Out *o, long long v) {
    char tmp[24];
    int i = 24;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    if (out_reserve(o, 24 - i) < 0) return -1;
    out_raw(o, tmp + i, 24 - i);
    return 0;
}

static PyObject *out_finish(Out *o) {
    if (_PyBytes_Resize(&o->bytes, o->len) < 0) return NULL;
    PyObject *b = o->bytes;
    o->bytes = NULL;
    return b;
}

/* Python's floor division / modulo for a positive divisor. */
static inline long long floor_mod(long long a, long long b) {
    long long m = a % b;
    return m < 0 ? m + b : m;
}

static inline long long floor_div(long long a, long long b) {
    return (a - floor_mod(a, b)) / b;
}

/* A small non-negative-or-not int that fits 64 bits; -1 with *ok = 0 otherwise (error cleared). */
static inline long long as_ll(PyObject *v, int *ok) {
    if (!PyLong_CheckExact(v)) {
        *ok = 0;
        return -1;
    }
    int overflow = 0;
    long long r = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (r == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        *ok = 0;
        return -1;
    }
    return r;
}

/* ------------------------------------------------------------------ access log: CLF lines */

PyDoc_STRVAR(clf_lines_doc,
"clf_lines(batch, bit, offset, count, parts, make_parts, stamp) -> (text, count, stop)\n\n"
"Traefik's CLF lines (``common``) for ``batch[:stop]`` as UTF-8 bytes, each ending in a newline:\n"
"``{client} - {user} [{stamp(start + offset)}] {head} {count}{tail}{duration ms}ms``, where\n"
"``head, tail = parts.get(key) or make_parts(key)`` for the entry's line key. ``count`` is the\n"
"RequestCount before the batch, returned after it. Stops at the first entry without ``bit`` in\n"
"its mask or with an unexpected type.");

static PyObject *clf_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "clf_lines() takes 7 arguments");
        return NULL;
    }
    PyObject *batch = args[0], *parts = args[4], *make_parts = args[5], *stamp_fn = args[6];
    if (!PyList_CheckExact(batch) || !PyDict_CheckExact(parts)) {
        PyErr_SetString(PyExc_TypeError, "clf_lines(): batch must be a list and parts a dict");
        return NULL;
    }
    long long bit = PyLong_AsLongLong(args[1]);
    if (bit == -1 && PyErr_Occurred()) return NULL;
    long long offset = PyLong_AsLongLong(args[2]);
    if (offset == -1 && PyErr_Occurred()) return NULL;
    long long count = PyLong_AsLongLong(args[3]);
    if (count == -1 && PyErr_Occurred()) return NULL;

    Py_ssize_t n = PyList_GET_SIZE(batch);
    Out out;
    if (out_init(&out, n * 160 + 256) < 0) return NULL;
    PyObject *stamp = NULL;     /* strong */
    PyObject *key = NULL;       /* strong: the line key of head/tail */
    PyObject *found = NULL;     /* strong: (head, tail) */
    long long low = 0, high = 0;
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(batch, i);
        if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) < E_MIN_LEN) break;
        int ok = 1;
        long long mask = as_ll(PyTuple_GET_ITEM(e, E_MASK), &ok);
        long long start = as_ll(PyTuple_GET_ITEM(e, E_START), &ok);
        long long duration = as_ll(PyTuple_GET_ITEM(e, E_DURATION), &ok);
        PyObject *client = PyTuple_GET_ITEM(e, E_CLIENT_IP);
        PyObject *user = PyTuple_GET_ITEM(e, E_USER);
        PyObject *middle = PyTuple_GET_ITEM(e, E_LINE);
        if (!ok || !(mask & bit) || !PyUnicode_CheckExact(client) || !PyUnicode_CheckExact(user)) break;
        if (!(low <= start && start < high)) {
            long long wall = start + offset;
            low = start - floor_mod(wall, NS_PER_S);
            high = low + NS_PER_S;
            PyObject *w = PyLong_FromLongLong(wall);
            if (w == NULL) goto fail;
            PyObject *s = PyObject_CallOneArg(stamp_fn, w);
            Py_DECREF(w);
            if (s == NULL) goto fail;
            Py_XSETREF(stamp, s);
            if (!PyUnicode_CheckExact(stamp)) {
                PyErr_SetString(PyExc_TypeError, "clf_lines(): stamp() must return a str");
                goto fail;
            }
        }
        if (middle != key) {
            int same = key == NULL ? 0 : PyObject_RichCompareBool(middle, key, Py_EQ);
            if (same < 0) goto fail;
            if (!same) {
                PyObject *got = PyDict_GetItemWithError(parts, middle);
                if (got != NULL) {
                    Py_INCREF(got);
                } else {
                    if (PyErr_Occurred()) goto fail;
                    got = PyObject_CallOneArg(make_parts, middle);
                    if (got == NULL) goto fail;
                }
                if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 2
                    || !PyUnicode_CheckExact(PyTuple_GET_ITEM(got, 0))
                    || !PyUnicode_CheckExact(PyTuple_GET_ITEM(got, 1))) {
                    Py_DECREF(got);
                    PyErr_SetString(PyExc_TypeError, "clf_lines(): parts must be (str, str)");
                    goto fail;
                }
                Py_XSETREF(found, got);
            }
            Py_INCREF(middle);
            Py_XSETREF(key, middle);
        }
        Py_ssize_t line_start = out.len;
        if (out_str(&out, client) < 0) goto line_failed;
        if (out_reserve(&out, 3) < 0) goto fail;
        out_raw(&out, " - ", 3);
        if (out_str(&out, user) < 0) goto line_failed;
        if (out_reserve(&out, 2) < 0) goto fail;
        out_raw(&out, " [", 2);
        if (out_str(&out, stamp) < 0) goto line_failed;
        if (out_reserve(&out, 2) < 0) goto fail;
        out_raw(&out, "] ", 2);
        if (out_str(&out, PyTuple_GET_ITEM(found, 0)) < 0) goto line_failed;
        if (out_reserve(&out, 1) < 0) goto fail;
        out_raw(&out, " ", 1);
        if (out_int(&out, count + 1) < 0) goto fail;
        if (out_str(&out, PyTuple_GET_ITEM(found, 1)) < 0) goto line_failed;
        if (out_int(&out, floor_div(duration, 1000000)) < 0) goto fail;
        if (out_reserve(&out, 3) < 0) goto fail;
        out_raw(&out, "ms\n", 3);
        count += 1;
        continue;
    line_failed:
        /* text that is not valid UTF-8 as it is (lone surrogates): the Python loop writes this
           line and the rest, with its replacement characters */
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) goto fail;
        PyErr_Clear();
        out.len = line_start;
        break;
    }
    Py_XDECREF(stamp);
    Py_XDECREF(key);
    Py_XDECREF(found);
    PyObject *text = out_finish(&out);
    if (text == NULL) return NULL;
    return Py_BuildValue("(NLn)", text, count, i);

fail:
    Py_XDECREF(stamp);
    Py_XDECREF(key);
    Py_XDECREF(found);
    Py_XDECREF(out.bytes);
    return NULL;
}

/* ------------------------------------------------------------------ metrics: slots */

/* slot[index] += delta */
static int slot_add(PyObject *slot, Py_ssize_t index, long long delta) {
    if (delta == 0) return 0;
    PyObject *old = PyList_GET_ITEM(slot, index);
    PyObject *d = PyLong_FromLongLong(delta);
    if (d == NULL) return -1;
    PyObject *sum = PyNumber_Add(old, d);
    Py_DECREF(d);
    if (sum == NULL) return -1;
    PyList_SET_ITEM(slot, index, sum);
    Py_DECREF(old);
    return 0;
}

typedef struct {
    long long count, req, resp, total, fast;
} Run;

static int run_flush(PyObject *slot, Run *r) {
    if (r->count
        && (slot_add(slot, 0, r->count) < 0 || slot_add(slot, 1, r->req) < 0 || slot_add(slot, 2, r->resp) < 0
            || slot_add(slot, 3, r->total) < 0 || slot_add(slot, 4, r->fast) < 0))
        return -1;
    memset(r, 0, sizeof *r);
    return 0;
}

PyDoc_STRVAR(metrics_add_doc,
"metrics_add(batch, bit, slots, width, bounds, rare) -> (stop, rare_entries)\n\n"
"Adds ``batch[:stop]`` to ``slots`` (labels -> ``[count, request bytes, response bytes,\n"
"duration ns, bucket0, ..., +Inf]``, created as ``[0] * width``; ``bounds`` the bucket bounds in\n"
"ns, ascending). Runs of equal labels are summed before their slot is touched. Entries with\n"
"retries or TLS (or all of them when ``rare``) are returned for the caller's other counters.\n"
"Stops at the first entry without ``bit`` in its mask or with an unexpected type.");

#define MAX_BOUNDS 64

static PyObject *metrics_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "metrics_add() takes 6 arguments");
        return NULL;
    }
    PyObject *batch = args[0], *slots = args[2], *bounds_obj = args[4];
    if (!PyList_CheckExact(batch) || !PyDict_CheckExact(slots) || !PyTuple_CheckExact(bounds_obj)) {
        PyErr_SetString(PyExc_TypeError, "metrics_add(): batch list, slots dict, bounds tuple");
        return NULL;
    }
    long long bit = PyLong_AsLongLong(args[1]);
    if (bit == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t width = PyLong_AsSsize_t(args[3]);
    if (width == -1 && PyErr_Occurred()) return NULL;
    int rare_all = PyObject_IsTrue(args[5]);
    if (rare_all < 0) return NULL;
    Py_ssize_t nb = PyTuple_GET_SIZE(bounds_obj);
    if (nb > MAX_BOUNDS || width != 4 + nb + 1) {
        PyErr_SetString(PyExc_ValueError, "metrics_add(): width must be 5 + len(bounds) (at most 64 bounds)");
        return NULL;
    }
    long long bounds[MAX_BOUNDS];
    for (Py_ssize_t j = 0; j < nb; j++) {
        bounds[j] = PyLong_AsLongLong(PyTuple_GET_ITEM(bounds_obj, j));
        if (bounds[j] == -1 && PyErr_Occurred()) return NULL;
    }
    long long first = nb ? bounds[0] : -1;

    PyObject *rare = PyList_New(0);
    if (rare == NULL) return NULL;
    PyObject *key = NULL;   /* strong */
    PyObject *slot = NULL;  /* strong */
    Run run = {0, 0, 0, 0, 0};
    Py_ssize_t n = PyList_GET_SIZE(batch), i;
    for (i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(batch, i);
        if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) < E_MIN_LEN) break;
        int ok = 1;
        long long mask = as_ll(PyTuple_GET_ITEM(e, E_MASK), &ok);
        long long size = as_ll(PyTuple_GET_ITEM(e, E_SIZE), &ok);
        long long req = as_ll(PyTuple_GET_ITEM(e, E_REQ_SIZE), &ok);
        long long ns = as_ll(PyTuple_GET_ITEM(e, E_DURATION), &ok);
        if (!ok || !(mask & bit)) break;
        PyObject *labels = PyTuple_GET_ITEM(e, E_LABELS);
        if (labels != key) {
            int same = key == NULL ? 0 : PyObject_RichCompareBool(labels, key, Py_EQ);
            if (same < 0) goto fail;
            if (!same) {
                if (slot != NULL && run_flush(slot, &run) < 0) goto fail;
                PyObject *got = PyDict_GetItemWithError(slots, labels);
                if (got != NULL) {
                    Py_INCREF(got);
                } else {
                    if (PyErr_Occurred()) goto fail;
                    got = PyList_New(width);
                    if (got == NULL) goto fail;
                    for (Py_ssize_t j = 0; j < width; j++) PyList_SET_ITEM(got, j, PyLong_FromLong(0));
                    if (PyDict_SetItem(slots, labels, got) < 0) {
                        Py_DECREF(got);
                        goto fail;
                    }
                }
                if (!PyList_CheckExact(got) || PyList_GET_SIZE(got) != width) {
                    Py_DECREF(got);
                    PyErr_SetString(PyExc_TypeError, "metrics_add(): a slot must be a list of width items");
                    goto fail;
                }
                Py_XSETREF(slot, got);
            }
            Py_INCREF(labels);
            Py_XSETREF(key, labels);
        }
        long long t;
        if (__builtin_add_overflow(run.total, ns, &t) || __builtin_add_overflow(run.req, req, &t)
            || __builtin_add_overflow(run.resp, size, &t)) {
            if (run_flush(slot, &run) < 0) goto fail;
        }
        run.count += 1;
        run.req += req;
        run.resp += size;
        run.total += ns;
        if (ns <= first) {
            run.fast += 1;
        } else {
            Py_ssize_t lo = 0, hi = nb;  /* bisect_left */
            while (lo < hi) {
                Py_ssize_t mid = (lo + hi) / 2;
                if (bounds[mid] < ns) lo = mid + 1; else hi = mid;
            }
            if (slot_add(slot, 4 + lo, 1) < 0) goto fail;
        }
        PyObject *retries = PyTuple_GET_ITEM(e, E_RETRIES);
        int retried = PyObject_IsTrue(retries);
        if (retried < 0) goto fail;
        if (retried || PyTuple_GET_ITEM(e, E_TLS) != Py_None || rare_all) {
            if (PyList_Append(rare, e) < 0) goto fail;
        }
    }
    if (slot != NULL && run_flush(slot, &run) < 0) goto fail;
    Py_XDECREF(slot);
    Py_XDECREF(key);
    return Py_BuildValue("(nN)", i, rare);

fail:
    Py_XDECREF(slot);
    Py_XDECREF(key);
    Py_DECREF(rare);
    return NULL;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"clf_lines", (PyCFunction)(void (*)(void))clf_lines, METH_FASTCALL, clf_lines_doc},
    {"metrics_add", (PyCFunction)(void (*)(void))metrics_add, METH_FASTCALL, metrics_add_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ferryman._speedups",
    "Compiled loops of the observability batches (optional; the Python code is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    return PyModule_Create(&module);
}
