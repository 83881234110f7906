/*
 * snapstore._chunker: the hot loop of the content-defined chunker.
 *
 * One GearChunker object follows one stream. scan() continues the current
 * chunk over a buffer and reports where it ends; the hash and the length of
 * the chunk so far are kept between calls, so the cut points do not depend on
 * how the stream was sliced into buffers. The algorithm is specified in
 * SPEC.md, section "Chunker"; snapstore/chunker.py holds the parameters and
 * derives the gear table from the repository's secret seed.
 *
 * The loop is split into three regions of the chunk so that no per-byte
 * branch depends on the chunk state:
 *   [0, min_size)          skipped, not hashed;
 *   [min_size, avg_size-1) hashed and tested against mask_s (hard to cut);
 *   [avg_size-1, max_size) hashed and tested against mask_l (easy to cut),
 *                          with a forced cut after byte max_size-1.
 * (In-chunk index j uses mask_s while the chunk length j+1 is below avg_size.)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

/* Below this many bytes the scan is too short to be worth dropping the GIL. */
#define RELEASE_GIL_MIN 8192

typedef struct {
    PyObject_HEAD
    uint64_t gear[256];
    uint64_t mask_s;
    uint64_t mask_l;
    uint64_t hash;      /* gear hash of the current chunk; 0 at a chunk start */
    Py_ssize_t pos;     /* bytes of the current chunk consumed so far */
    Py_ssize_t min_size;
    Py_ssize_t avg_size;
    Py_ssize_t max_size;
    int normalization;
    int busy;           /* a scan is running without the GIL */
} GearChunker;

/* A 64-bit word whose top `bits` bits are set (0 <= bits <= 64). */
static uint64_t
top_bits(int bits)
{
    if (bits <= 0) {
        return 0;
    }
    return ~(uint64_t)0 << (64 - bits);
}

/*
 * Hash [*qp, stop) against one mask. Returns 1 on a cut, with *qp just after
 * the cut byte. The loop is bound by the one-cycle dependency of h on itself
 * (gcc emits a single lea); unrolling it measured no faster.
 */
static inline int
scan_region(const uint64_t *gear, uint64_t mask, uint64_t *hp,
            const uint8_t **qp, const uint8_t *stop)
{
    const uint8_t *q = *qp;
    uint64_t h = *hp;
    int cut = 0;

    while (q < stop) {
        h = (h << 1) + gear[*q++];
        if ((h & mask) == 0) {
            cut = 1;
            break;
        }
    }
    *qp = q;
    *hp = h;
    return cut;
}

/*
 * Continue the current chunk over p[0 .. len). Returns the number of bytes up
 * to and including the cut byte (the state is then reset for the next chunk),
 * or -1 when the chunk goes on past the end (the state is carried over).
 * Touches no Python objects, so it runs without the GIL.
 */
static Py_ssize_t
scan_core(GearChunker *self, const uint8_t *p, Py_ssize_t len)
{
    const Py_ssize_t base = self->pos; /* in-chunk index of p[0] */
    const uint8_t *q = p;
    const uint8_t *end = p + len;
    const uint8_t *stop;
    Py_ssize_t limit;
    uint64_t h = self->hash;

    /* Region 1: skip up to min_size without hashing. */
    if (base < self->min_size) {
        if (self->min_size - base >= len) {
            self->pos = base + len;
            return -1;
        }
        q = p + (self->min_size - base);
    }

    /* Region 2: chunk length after the byte is below avg_size. */
    limit = self->avg_size - 1 - base; /* buffer index where region 3 starts */
    if (limit > q - p) {
        stop = limit < len ? p + limit : end;
        if (scan_region(self->gear, self->mask_s, &h, &q, stop)) {
            goto cut;
        }
    }

    /* Region 3: up to max_size, where the cut is forced. */
    limit = self->max_size - base; /* > 0: a chunk never stays open at max_size */
    stop = limit < len ? p + limit : end;
    if (scan_region(self->gear, self->mask_l, &h, &q, stop)) {
        goto cut;
    }
    if (base + (q - p) == self->max_size) {
        goto cut;
    }
    self->hash = h;
    self->pos = base + len;
    return -1;

cut:
    self->hash = 0;
    self->pos = 0;
    return q - p;
}

static PyObject *
GearChunker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"gear", "min_size", "avg_size", "max_size",
                             "normalization", NULL};
    Py_buffer gear;
    Py_ssize_t min_size, avg_size, max_size;
    int normalization;
    int bits = 0;
    GearChunker *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*nnni:GearChunker", kwlist,
                                     &gear, &min_size, &avg_size, &max_size,
                                     &normalization)) {
        return NULL;
    }
    if (gear.len != 256 * 8) {
        PyBuffer_Release(&gear);
        PyErr_SetString(PyExc_ValueError, "the gear table is 2048 bytes");
        return NULL;
    }
    if (!(0 < min_size && min_size < avg_size && avg_size < max_size)) {
        PyBuffer_Release(&gear);
        PyErr_SetString(PyExc_ValueError,
                        "need 0 < min_size < avg_size < max_size");
        return NULL;
    }
    if ((avg_size & (avg_size - 1)) != 0) {
        PyBuffer_Release(&gear);
        PyErr_SetString(PyExc_ValueError, "avg_size must be a power of two");
        return NULL;
    }
    while (((Py_ssize_t)1 << bits) < avg_size) {
        bits++;
    }
    if (normalization < 0 || normalization >= bits || bits + normalization > 64) {
        PyBuffer_Release(&gear);
        PyErr_SetString(PyExc_ValueError,
                        "need 0 <= normalization < log2(avg_size) "
                        "and log2(avg_size) + normalization <= 64");
        return NULL;
    }

    self = (GearChunker *)type->tp_alloc(type, 0);
    if (self == NULL) {
        PyBuffer_Release(&gear);
        return NULL;
    }
    /* Little-endian words, whatever the byte order of this machine. */
    const uint8_t *g = (const uint8_t *)gear.buf;
    for (int i = 0; i < 256; i++) {
        uint64_t v = 0;
        for (int k = 7; k >= 0; k--) {
            v = (v << 8) | g[8 * i + k];
        }
        self->gear[i] = v;
    }
    PyBuffer_Release(&gear);
    self->mask_s = top_bits(bits + normalization);
    self->mask_l = top_bits(bits - normalization);
    self->hash = 0;
    self->pos = 0;
    self->min_size = min_size;
    self->avg_size = avg_size;
    self->max_size = max_size;
    self->normalization = normalization;
    self->busy = 0;
    return (PyObject *)self;
}

static PyObject *
GearChunker_scan(GearChunker *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buffer", "start", NULL};
    Py_buffer view;
    Py_ssize_t start = 0;
    Py_ssize_t cut;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|n:scan", kwlist, &view,
                                     &start)) {
        return NULL;
    }
    if (start < 0 || start > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_IndexError, "start is outside the buffer");
        return NULL;
    }
    if (self->busy) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError,
                        "GearChunker is already scanning in another thread");
        return NULL;
    }
    const uint8_t *p = (const uint8_t *)view.buf + start;
    Py_ssize_t len = view.len - start;
    if (len >= RELEASE_GIL_MIN) {
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        cut = scan_core(self, p, len);
        Py_END_ALLOW_THREADS
        self->busy = 0;
    }
    else {
        cut = scan_core(self, p, len);
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(cut < 0 ? -1 : start + cut);
}

static PyObject *
GearChunker_reset(GearChunker *self, PyObject *Py_UNUSED(ignored))
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "GearChunker is already scanning in another thread");
        return NULL;
    }
    self->hash = 0;
    self->pos = 0;
    Py_RETURN_NONE;
}

static PyMethodDef GearChunker_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))GearChunker_scan,
     METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("scan(buffer, start=0) -> int\n\n"
               "Continue the current chunk over buffer[start:]. Return the index\n"
               "just after the chunk's last byte, or -1 if the chunk goes on.")},
    {"reset", (PyCFunction)GearChunker_reset, METH_NOARGS,
     PyDoc_STR("reset() -> None\n\nForget the current chunk and start a new one.")},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef GearChunker_members[] = {
    {"min_size", T_PYSSIZET, offsetof(GearChunker, min_size), READONLY, NULL},
    {"avg_size", T_PYSSIZET, offsetof(GearChunker, avg_size), READONLY, NULL},
    {"max_size", T_PYSSIZET, offsetof(GearChunker, max_size), READONLY, NULL},
    {"normalization", T_INT, offsetof(GearChunker, normalization), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject GearChunkerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "snapstore._chunker.GearChunker",
    .tp_basicsize = sizeof(GearChunker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR(
        "GearChunker(gear, min_size, avg_size, max_size, normalization)\n\n"
        "Finds the cut points of one stream; see SPEC.md, \"Chunker\"."),
    .tp_new = GearChunker_new,
    .tp_methods = GearChunker_methods,
    .tp_members = GearChunker_members,
};

static struct PyModuleDef chunker_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "snapstore._chunker",
    .m_doc = PyDoc_STR("Native core of snapstore's content-defined chunker."),
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__chunker(void)
{
    PyObject *module;

    if (PyType_Ready(&GearChunkerType) < 0) {
        return NULL;
    }
    module = PyModule_Create(&chunker_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&GearChunkerType);
    if (PyModule_AddObject(module, "GearChunker", (PyObject *)&GearChunkerType) < 0) {
        Py_DECREF(&GearChunkerType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
