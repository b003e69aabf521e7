/* hekacli.parsers._linescan: cut log lines into capture columns, without the GIL.
 *
 * The bulk decoder (parsers/linescan.py) compiles a log format into a tiny program of two kinds of
 * steps, and this module runs it over a chunk of raw bytes, one line after another:
 *
 *   ("lit", b"text")                   the line continues with exactly this text
 *   ("run", table, min_len, column)    the longest run of bytes whose table[byte] is 1, at least
 *                                      min_len long, is the next value of `column`
 *
 * A run may also carry a conversion (`conv`, the step's optional fifth item), computed while the
 * value is at hand and returned as extra columns: 1 = integer (-?[0-9]{1,18}), 2 = CLF time
 * (dd/Mon/yyyy:HH:MM:SS +hhmm to ns since the epoch, exactly as times.clf_to_ns), 3 = HTTP request
 * line split into method, URI and protocol (exactly as derive.split_request; null parts where it has
 * no method or no protocol). A value that 1 or 2 does not take declines the line, so that the regex
 * path and the Python conversion decide.
 *
 * A run may also name a check (`check`, the sixth item): a value that fails it declines the line,
 * so each check only has to be sound (never pass a value that the format's regex refuses): 1 =
 * -?[0-9]+, 2 = [0-9]+, 3 = [0-9]{3}, 4 = [0-9]+\.[0-9]+, 5 = grammar.CLF_DATE, 6 = grammar.HOST
 * (an IPv4 or IPv6 address or a host name, RFC 3986), 7 = -?[0-9]+|-.
 *
 * A run may also name a split byte (`split`, the seventh item, -1 for none): its value then ends at
 * the last occurrence of that byte in the run, where the next step (the byte, as a literal) starts.
 * The program uses it for a value whose class holds the separator after it, when the value after
 * the separator cannot hold it and is followed by a byte outside the first class (Apache's
 * "%v:%p ": the regex's greedy host then ends at the last ':' of the run).
 *
 * Text after the last step is ignored (the format's regex is anchored at the start only). A line is
 * *declined* -- handed back to the exact regex path, never rejected here -- when it contains a byte
 * that the program was not built for (a backslash, a tab, CR, VT, FF, two spaces in a row, or any
 * byte >= 0x80) or when a step, a check or a conversion does not take it. Values of runs without a
 * check here are checked by the caller (parsers/linescan.py) when the format needs it.
 *
 * The columns come back as Arrow arrays through the Arrow C data interface: a (schema capsule, array
 * capsule) pair per column, which polars imports with `pl.Series(obj)` where
 * `obj.__arrow_c_array__()` returns the pair. Values are string views (Arrow "vu", polars' own
 * string layout): values of up to 12 bytes sit in the view itself, longer ones in the column's own
 * data buffer (so a column kept alone keeps only its own text); row numbers are int64.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ---- Arrow C data interface (https://arrow.apache.org/docs/format/CDataInterface.html) ---- */
struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

static void release_schema(struct ArrowSchema *schema) { schema->release = NULL; }

/* ---- column buffers ----
 * Mapped on their own (from 1 MB) rather than taken from malloc's heap: glibc raises its mmap
 * threshold after the first big free, and big column buffers then fragment the heap and keep the
 * process's memory high long after polars has dropped them (100 MB more for a 1M-line report).
 *
 * A released mapping is kept in a small pool (up to POOL_LIMIT bytes) and handed out again by the
 * next chunk: its pages are already there, while a fresh mapping costs a page fault for every 4 KB
 * written (on a VM, about as much time as scanning the bytes). A pooled mapping shorter than the
 * request is grown with mremap, which keeps the pages it has. Arrays are released by whichever
 * thread polars drops them on, so the pool has a lock. */
#define BUFFER_MAP_MIN ((size_t)1 << 20)
#define POOL_SLOTS 64
#define POOL_LIMIT ((size_t)128 << 20)

typedef struct {
    size_t map_len; /* 0: from malloc */
    char pad[56];   /* the payload stays 64-byte aligned, as Arrow recommends */
} BufferHeader;

static BufferHeader *pool[POOL_SLOTS];
static int pool_count;
static size_t pool_bytes;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* A pooled mapping for `total` bytes (the best fit, else the largest grown), or NULL. */
static BufferHeader *pool_take(size_t total) {
    pthread_mutex_lock(&pool_lock);
    int best = -1, largest = -1;
    for (int i = 0; i < pool_count; i++) {
        size_t len = pool[i]->map_len;
        if (len >= total && (best < 0 || len < pool[best]->map_len)) best = i;
        if (largest < 0 || len > pool[largest]->map_len) largest = i;
    }
    int pick = best >= 0 ? best : largest;
    BufferHeader *h = NULL;
    if (pick >= 0) {
        h = pool[pick];
        pool[pick] = pool[--pool_count];
        pool_bytes -= h->map_len;
    }
    pthread_mutex_unlock(&pool_lock);
    if (h != NULL && h->map_len < total) {
        void *grown = mremap(h, h->map_len, total, MREMAP_MAYMOVE);
        if (grown == MAP_FAILED) {
            munmap(h, h->map_len);
            return NULL;
        }
        h = grown;
        h->map_len = total;
    }
    return h;
}

/* Keep mapping `h` for a later buffer_alloc, or give it back when the pool is full. */
static void pool_give(BufferHeader *h) {
    pthread_mutex_lock(&pool_lock);
    int kept = pool_count < POOL_SLOTS && pool_bytes + h->map_len <= POOL_LIMIT;
    if (kept) {
        pool[pool_count++] = h;
        pool_bytes += h->map_len;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!kept) munmap(h, h->map_len);
}

static void *buffer_alloc(size_t n, int zeroed) {
    size_t total = n + sizeof(BufferHeader);
    BufferHeader *h;
    if (total < BUFFER_MAP_MIN) {
        if ((h = zeroed ? calloc(1, total) : malloc(total)) == NULL) return NULL;
        h->map_len = 0;
    } else if ((h = pool_take(total)) != NULL) {
        if (zeroed) memset(h + 1, 0, n);
    } else {
        void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) return NULL; /* (fresh mappings are zeroed) */
        h = map;
        h->map_len = total;
    }
    return h + 1;
}

static void buffer_free(const void *p) {
    if (p == NULL) return;
    BufferHeader *h = (BufferHeader *)p - 1;
    if (h->map_len)
        pool_give(h);
    else
        free(h);
}

/* Give back the whole pages of a mapped buffer past its first `used` bytes. */
static void buffer_trim(void *p, size_t used) {
    BufferHeader *h = (BufferHeader *)p - 1;
    if (h->map_len == 0) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t keep = (sizeof(BufferHeader) + used + page - 1) / page * page;
    if (keep < h->map_len && munmap((char *)h + keep, h->map_len - keep) == 0) h->map_len = keep;
}

/* An exported array owns up to four column buffers (validity, values or views, data, sizes). */
typedef struct {
    const void *buffers[4];
} Owned;

static void release_array(struct ArrowArray *array) {
    Owned *owned = array->private_data;
    for (int i = 0; i < 4; i++) buffer_free(owned->buffers[i]);
    free(owned);
    array->release = NULL;
}

static void schema_capsule_destructor(PyObject *capsule) {
    struct ArrowSchema *schema = PyCapsule_GetPointer(capsule, "arrow_schema");
    if (schema == NULL) return;
    if (schema->release != NULL) schema->release(schema);
    free(schema);
}

static void array_capsule_destructor(PyObject *capsule) {
    struct ArrowArray *array = PyCapsule_GetPointer(capsule, "arrow_array");
    if (array == NULL) return;
    if (array->release != NULL) array->release(array);
    free(array);
}

/* (schema capsule, array capsule) of an array with `buffers` (taken: freed here on failure). */
static PyObject *arrow_pair(const char *format, int64_t length, int64_t nulls, int n_buffers,
                            void *buffers[4]) {
    struct ArrowSchema *schema = calloc(1, sizeof *schema);
    struct ArrowArray *array = calloc(1, sizeof *array);
    Owned *owned = calloc(1, sizeof *owned);
    if (schema == NULL || array == NULL || owned == NULL) {
        free(schema), free(array), free(owned);
        for (int i = 0; i < 4; i++) buffer_free(buffers[i]);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < 4; i++) owned->buffers[i] = buffers[i];
    schema->format = format;
    schema->name = "";
    schema->flags = 2; /* ARROW_FLAG_NULLABLE */
    schema->release = release_schema;
    array->length = length;
    array->null_count = nulls;
    array->n_buffers = n_buffers;
    array->buffers = owned->buffers;
    array->private_data = owned;
    array->release = release_array;
    PyObject *s = PyCapsule_New(schema, "arrow_schema", schema_capsule_destructor);
    if (s == NULL) {
        schema->release(schema), free(schema), array->release(array), free(array);
        return NULL;
    }
    PyObject *a = PyCapsule_New(array, "arrow_array", array_capsule_destructor);
    if (a == NULL) {
        Py_DECREF(s);
        array->release(array), free(array);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, s, a);
    Py_DECREF(s);
    Py_DECREF(a);
    return pair;
}

/* A string-view column being filled: 16-byte views, the bytes of values longer than 12, validity. */
typedef struct {
    unsigned char *views;
    char *data;
    size_t data_len;
    uint8_t *valid; /* NULL: every row has a value */
    int64_t present;
} Strings;

/* Row m of `col` is src[0:n] (Arrow's view layout: length, then the value itself when it fits in
   12 bytes, else its first 4 bytes, buffer 0 and its offset there). */
static inline void put_string(Strings *col, int64_t m, const unsigned char *src, Py_ssize_t n) {
    unsigned char *view = col->views + 16 * m;
    int32_t len32 = (int32_t)n, index = 0, offset = (int32_t)col->data_len;
    memcpy(view, &len32, 4);
    if (n <= 12) {
        memset(view + 4, 0, 12);
        memcpy(view + 4, src, (size_t)n);
    } else {
        memcpy(view + 4, src, 4);
        memcpy(view + 8, &index, 4);
        memcpy(view + 12, &offset, 4);
        memcpy(col->data + col->data_len, src, (size_t)n);
        col->data_len += (size_t)n;
    }
    if (col->valid != NULL) {
        col->valid[m >> 3] |= (uint8_t)(1u << (m & 7));
        col->present++;
    }
}

static inline void put_null(Strings *col, int64_t m) { memset(col->views + 16 * m, 0, 16); }

/* `data_cap` bounds the bytes of all its values (they are disjoint pieces of the chunk). */
static int strings_alloc(Strings *col, size_t rows, size_t data_cap, int nullable) {
    col->views = buffer_alloc(rows * 16, 0);
    col->data = buffer_alloc(data_cap ? data_cap : 1, 0);
    col->valid = nullable ? buffer_alloc((rows + 7) / 8, 1) : NULL;
    return col->views == NULL || col->data == NULL || (nullable && col->valid == NULL) ? -1 : 0;
}

static void strings_free(Strings *col) { buffer_free(col->views), buffer_free(col->data), buffer_free(col->valid); }

/* The finished column as an Arrow pair (its buffers are taken). */
static PyObject *strings_export(Strings *col, int64_t length) {
    void *buffers[4] = {NULL, col->views, NULL, NULL};
    int64_t nulls = col->valid != NULL ? length - col->present : 0;
    if (nulls > 0) buffers[0] = col->valid;
    else buffer_free(col->valid);
    buffer_trim(col->data, col->data_len); /* the bound over-reserved it */
    buffers[2] = col->data;
    int64_t *sizes = buffer_alloc(sizeof *sizes, 0);
    buffers[3] = sizes;
    col->views = NULL, col->data = NULL, col->valid = NULL;
    if (sizes == NULL) {
        for (int i = 0; i < 4; i++) buffer_free(buffers[i]);
        return PyErr_NoMemory();
    }
    *sizes = (int64_t)col->data_len; /* Arrow's "variadic buffer sizes": one data buffer */
    return arrow_pair("vu", length, nulls, 4, buffers);
}

/* An int64 column; `valid` (NULL: all valid) and `nulls` as Arrow wants them. Takes the buffers. */
static PyObject *int_export(int64_t length, int64_t *values, uint8_t *valid, int64_t nulls) {
    void *buffers[4] = {nulls > 0 ? valid : NULL, values, NULL, NULL};
    if (nulls == 0) buffer_free(valid);
    return arrow_pair("l", length, nulls, 2, buffers);
}

/* ---- growable buffers ---- */
typedef struct {
    int64_t *data;
    size_t len, cap;
} Ints;

static int ints_push(Ints *v, int64_t x) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        int64_t *p = realloc(v->data, cap * sizeof *p);
        if (p == NULL) return -1;
        v->data = p;
        v->cap = cap;
    }
    v->data[v->len++] = x;
    return 0;
}

/* ---- the program ---- */
typedef struct {
    int is_run;
    const char *text; /* lit */
    Py_ssize_t text_len;
    uint64_t lit_word, lit_mask; /* lit of up to 8 bytes: its bytes, and which bytes of a word */
    unsigned char table[256]; /* run */
    int stop;                 /* run: the one byte that ends it on a clean line, -1 none, -2 several */
    Py_ssize_t min_len;
    Py_ssize_t column;
    int conv;  /* run: CONV_* */
    int check; /* run: CHECK_* the value must pass, else the line is declined */
    int split; /* run: -1, or a byte of the run's class at whose last occurrence in the run it ends */
} Step;

enum { CONV_NONE = 0, CONV_INT = 1, CONV_CLF = 2, CONV_REQUEST = 3 };
enum { CHECK_NONE = 0, CHECK_INT, CHECK_UINT, CHECK_DIGITS3, CHECK_DECIMAL, CHECK_CLF, CHECK_HOST, CHECK_INT_OR_DASH,
       CHECK_LAST };

/* Bytes a line must not contain for the program to apply (see the module comment). */
static unsigned char DECLINE[256];

static void init_decline_table(void) {
    for (int c = 0x80; c < 256; c++) DECLINE[c] = 1;
    DECLINE['\\'] = DECLINE['\t'] = DECLINE['\r'] = DECLINE['\v'] = DECLINE['\f'] = DECLINE['\n'] = 1;
}

static int parse_program(PyObject *ops, Step **out, Py_ssize_t *n_steps, Py_ssize_t n_columns) {
    PyObject *seq = PySequence_Fast(ops, "the program must be a sequence of steps");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Step *steps = calloc(n ? (size_t)n : 1, sizeof *steps);
    if (steps == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *op = PySequence_Fast_GET_ITEM(seq, i);
        const char *kind, *text;
        Py_ssize_t text_len, min_len = 0, column = 0;
        int conv = CONV_NONE, check = CHECK_NONE, split = -1;
        if (!PyTuple_Check(op) || PyTuple_GET_SIZE(op) < 2 ||
            !PyArg_ParseTuple(op, "sy#|nniii", &kind, &text, &text_len, &min_len, &column, &conv, &check,
                              &split))
            goto bad;
        if (strcmp(kind, "lit") == 0) {
            steps[i].text = text;
            steps[i].text_len = text_len;
            if (text_len <= 8) {
                unsigned char word[8] = {0}, mask[8] = {0};
                memcpy(word, text, (size_t)text_len);
                memset(mask, 0xff, (size_t)text_len);
                memcpy(&steps[i].lit_word, word, 8);
                memcpy(&steps[i].lit_mask, mask, 8);
            }
        } else if (strcmp(kind, "run") == 0 && text_len == 256 && column >= 0 && column < n_columns &&
                   conv >= CONV_NONE && conv <= CONV_REQUEST && check >= CHECK_NONE && check < CHECK_LAST &&
                   split >= -1 && split < 256 && (split < 0 || (text[split] && !DECLINE[split]))) {
            steps[i].is_run = 1;
            steps[i].conv = conv;
            steps[i].check = check;
            steps[i].split = split;
            memcpy(steps[i].table, text, 256);
            /* On a clean line (no DECLINE byte) the run ends at the first byte outside the table;
               when only one such byte can occur, a search for that byte finds it. */
            steps[i].stop = -1;
            for (int c = 0; c < 256; c++) {
                if (DECLINE[c] || steps[i].table[c]) continue;
                steps[i].stop = steps[i].stop == -1 ? c : -2;
            }
            steps[i].min_len = min_len;
            steps[i].column = column;
        } else {
            goto bad;
        }
    }
    /* The literal texts point into `ops`, which the caller keeps alive during the scan. */
    Py_DECREF(seq);
    *out = steps;
    *n_steps = n;
    return 0;
bad:
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad step in the scan program");
    Py_DECREF(seq);
    free(steps);
    return -1;
}

/* ---- checks (see the module comment) ---- */
static const char MONTHS[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* 0-11 for "Jan".."Dec" (exact case), else -1 */
static inline int month_index(const unsigned char *t) {
    uint32_t key = (uint32_t)t[0] << 16 | (uint32_t)t[1] << 8 | t[2];
    for (int m = 0; m < 12; m++) {
        const unsigned char *name = (const unsigned char *)MONTHS[m];
        if (key == ((uint32_t)name[0] << 16 | (uint32_t)name[1] << 8 | name[2])) return m;
    }
    return -1;
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static inline int is_hex(unsigned char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int all_digits(const unsigned char *t, Py_ssize_t n) {
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!is_digit(t[i])) return 0;
    return 1;
}

static int in_range(const unsigned char *t, int lo, int hi) {
    if (!is_digit(t[0]) || !is_digit(t[1])) return 0;
    int v = (t[0] - '0') * 10 + (t[1] - '0');
    return v >= lo && v <= hi;
}

/* grammar.CLF_DATE: dd/Mon/yyyy:HH:MM:SS +hhmm with dd 01-31, HH 00-23, MM 00-59, SS 00-60 */
static int check_clf(const unsigned char *t, Py_ssize_t n) {
    if (n != 26 || t[2] != '/' || t[6] != '/' || t[11] != ':' || t[14] != ':' || t[17] != ':' || t[20] != ' ' ||
        (t[21] != '+' && t[21] != '-'))
        return 0;
    return month_index(t + 3) >= 0 && in_range(t, 1, 31) && all_digits(t + 7, 4) && in_range(t + 12, 0, 23) &&
           in_range(t + 15, 0, 59) && in_range(t + 18, 0, 60) && in_range(t + 22, 0, 23) && in_range(t + 24, 0, 59);
}

/* grammar.IPV4: four octets 0-255 without leading zeros */
static int is_ipv4(const unsigned char *t, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (i >= n || t[i] != '.') return 0;
            i++;
        }
        Py_ssize_t start = i;
        int v = 0;
        while (i < n && is_digit(t[i]) && i - start < 3) v = v * 10 + (t[i++] - '0');
        Py_ssize_t len = i - start;
        if (len == 0 || (len > 1 && t[start] == '0') || v > 255) return 0;
    }
    return i == n;
}

/* grammar.IPV6 (RFC 3986 IPv6address): 16-bit groups of 1-4 hex digits, at most one "::", an IPv4
   address allowed as the last element (counting as two groups); 8 groups, or at most 7 with "::". */
static int is_ipv6(const unsigned char *t, Py_ssize_t n) {
    Py_ssize_t i = 0;
    int groups = 0, compressed = 0;
    if (n >= 2 && t[0] == ':' && t[1] == ':') {
        compressed = 1;
        i = 2;
        if (i == n) return 1;
    }
    for (;;) {
        Py_ssize_t j = i;
        int dotted = 0;
        while (j < n && t[j] != ':') dotted |= t[j++] == '.';
        if (dotted) {
            if (j != n || !is_ipv4(t + i, j - i)) return 0;
            groups += 2;
        } else {
            if (j - i < 1 || j - i > 4) return 0;
            for (Py_ssize_t k = i; k < j; k++)
                if (!is_hex(t[k])) return 0;
            groups += 1;
        }
        if (j == n) break;
        if (j + 1 < n && t[j + 1] == ':') {
            if (compressed) return 0;
            compressed = 1;
            i = j + 2;
            if (i == n) break;
        } else {
            i = j + 1;
            if (i == n) return 0; /* a single trailing colon */
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

/* grammar.HOST: an IPv4 or IPv6 address or a host name ([A-Za-z0-9._~!$&'()*+,;=-] or %XX) */
static unsigned char HOSTNAME[256];

/* table[c] = 1 for the ASCII letters and digits and the characters of `others` */
static void set_alnum_and(unsigned char table[256], const char *others) {
    for (int c = '0'; c <= '9'; c++) table[c] = 1;
    for (int c = 'a'; c <= 'z'; c++) table[c] = 1, table[c - 'a' + 'A'] = 1;
    for (const char *p = others; *p; p++) table[(unsigned char)*p] = 1;
}

static int check_host(const unsigned char *t, Py_ssize_t n) {
    if (n == 0) return 0;
    int name = 1;
    for (Py_ssize_t i = 0; i < n && name; i++) {
        if (HOSTNAME[t[i]]) continue;
        if (t[i] == '%' && i + 2 < n && is_hex(t[i + 1]) && is_hex(t[i + 2]))
            i += 2;
        else
            name = 0;
    }
    /* every IPv4 address is also a host name; only an IPv6 address has colons */
    return name || is_ipv6(t, n);
}

/* The length of every value a check takes, when there is only one (else 0). */
static const Py_ssize_t FIXED_LENGTH[CHECK_LAST] = {[CHECK_DIGITS3] = 3, [CHECK_CLF] = 26};

static int check_value(int check, const unsigned char *t, Py_ssize_t n) {
    switch (check) {
    case CHECK_INT: return n > 0 && t[0] == '-' ? all_digits(t + 1, n - 1) : all_digits(t, n);
    case CHECK_UINT: return all_digits(t, n);
    case CHECK_DIGITS3: return n == 3 && all_digits(t, 3);
    case CHECK_DECIMAL: {
        const unsigned char *dot = memchr(t, '.', (size_t)n);
        return dot != NULL && all_digits(t, dot - t) && all_digits(dot + 1, n - (dot - t) - 1);
    }
    case CHECK_CLF: return check_clf(t, n);
    case CHECK_HOST: return check_host(t, n);
    case CHECK_INT_OR_DASH: return (n == 1 && t[0] == '-') || check_value(CHECK_INT, t, n);
    default: return 1;
    }
}

/* No DECLINE byte and no two spaces in a row. */
static int is_clean(const unsigned char *line, Py_ssize_t len) {
    Py_ssize_t i = 0;
#ifdef __SSE2__
    const __m128i backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(' ');
    /* \t \n \v \f \r are 9..13: (c - 9) < 5 unsigned, i.e. c - 9 - 128 < 5 - 128 signed */
    const __m128i low = _mm_set1_epi8((char)(9 + 128)), five = _mm_set1_epi8((char)(5 - 128));
    for (; i + 17 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(line + i));
        __m128i next = _mm_loadu_si128((const __m128i *)(line + i + 1));
        __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(v, backslash),
                                   _mm_cmplt_epi8(_mm_sub_epi8(v, low), five));
        bad = _mm_or_si128(bad, _mm_and_si128(_mm_cmpeq_epi8(v, space), _mm_cmpeq_epi8(next, space)));
        if (_mm_movemask_epi8(_mm_or_si128(bad, v)) != 0) return 0; /* v's top bit: a byte >= 0x80 */
    }
#endif
    for (; i < len; i++) {
        if (DECLINE[line[i]] || (line[i] == ' ' && i + 1 < len && line[i + 1] == ' ')) return 0;
    }
    return 1;
}

/* The first position >= pos of byte `stop` in line[0:len], or len (16 bytes at a time: values are
   short, and a call to memchr costs more than it saves on them). */
static inline Py_ssize_t find_byte(const unsigned char *line, Py_ssize_t pos, Py_ssize_t len, unsigned char stop) {
#ifdef __SSE2__
    const __m128i needle = _mm_set1_epi8((char)stop);
    for (; pos + 16 <= len; pos += 16) {
        int mask = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(line + pos)), needle));
        if (mask != 0) return pos + __builtin_ctz((unsigned)mask);
    }
#endif
    while (pos < len && line[pos] != stop) pos++;
    return pos;
}

/* Run the program on one line; on success fill starts/ends (one per column) and return 1. */
static int match_line(const unsigned char *line, Py_ssize_t len, const Step *steps, Py_ssize_t n_steps,
                      Py_ssize_t *starts, Py_ssize_t *ends) {
    if (!is_clean(line, len)) return 0;
    Py_ssize_t pos = 0;
    for (Py_ssize_t s = 0; s < n_steps; s++) {
        const Step *step = &steps[s];
        if (step->is_run) {
            Py_ssize_t p = pos, fixed = FIXED_LENGTH[step->check];
            if (fixed > 0) {
                /* a check that takes only values of one length, all of whose characters are in the
                   run's class: the run is valid only if it is exactly that long */
                if (len - pos < fixed || !check_value(step->check, line + pos, fixed) ||
                    (pos + fixed < len && step->table[line[pos + fixed]]))
                    return 0;
                starts[step->column] = pos;
                ends[step->column] = pos += fixed;
                continue;
            }
            if (step->split >= 0) {
                /* the value ends at the last `split` byte of the run (the program puts it only
                   before that byte and a run that cannot hold it, as in Apache's "%v:%p ") */
                while (p < len && step->table[line[p]]) p++;
                while (p > pos && line[p - 1] != step->split) p--;
                if (p-- == pos) return 0;
            } else if (step->stop >= 0) {
                p = find_byte(line, pos, len, (unsigned char)step->stop);
            } else if (step->stop == -1) {
                p = len;
            } else if (step->check == CHECK_HOST) {
                /* a run of host-name characters only is a valid host: the full check is for the
                   rest (an IPv6 address, a %XX escape) */
                int other = 0;
                while (p < len && step->table[line[p]]) other |= !HOSTNAME[line[p++]];
                if (p - pos < step->min_len || p == pos || (other && !check_host(line + pos, p - pos))) return 0;
                starts[step->column] = pos;
                ends[step->column] = pos = p;
                continue;
            } else {
                while (p < len && step->table[line[p]]) p++;
            }
            if (p - pos < step->min_len || (step->check && !check_value(step->check, line + pos, p - pos)))
                return 0;
            starts[step->column] = pos;
            ends[step->column] = p;
            pos = p;
        } else {
            if (len - pos < step->text_len) return 0;
            if (step->text_len <= 8 && len - pos >= 8) {
                uint64_t got;
                memcpy(&got, line + pos, 8);
                if ((got & step->lit_mask) != step->lit_word) return 0;
            } else if (memcmp(line + pos, step->text, (size_t)step->text_len) != 0) {
                return 0;
            }
            pos += step->text_len;
        }
    }
    return 1;
}

/* ---- conversions (see the module comment); each returns 1 and sets *out, or 0 ---- */
static int parse_int(const unsigned char *t, Py_ssize_t n, int64_t *out) {
    int neg = n > 0 && t[0] == '-';
    Py_ssize_t i = neg;
    if (n - i < 1 || n - i > 18) return 0;
    int64_t v = 0;
    for (; i < n; i++) {
        if (t[i] < '0' || t[i] > '9') return 0;
        v = v * 10 + (t[i] - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

static int digits(const unsigned char *t, int n, int64_t *out) {
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9') return 0;
        v = v * 10 + (t[i] - '0');
    }
    *out = v;
    return 1;
}

/* times.days_from_civil, with Python's floor division */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (m + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The last day and zone a CLF column converted: lines of one day share them (as in times.py). */
typedef struct {
    int valid;
    unsigned char day[11], zone[5];
    int64_t base; /* days_from_civil * 86400 - zone offset, in seconds */
} ClfCache;

/* The day part of a CLF date: days_from_civil(yyyy, Mon, dd) * 86400 - the zone's offset. */
static int clf_base(const unsigned char *t, int64_t *base) {
    int64_t d, y, oh, om;
    int m = month_index(t + 3);
    if (m < 0 || !digits(t, 2, &d) || !digits(t + 7, 4, &y) || !digits(t + 22, 2, &oh) || !digits(t + 24, 2, &om))
        return 0;
    int64_t off = (oh * 3600 + om * 60) * (t[21] == '-' ? -1 : 1);
    *base = days_from_civil(y, m + 1, d) * 86400 - off;
    return 1;
}

/* times.clf_to_ns on "dd/Mon/yyyy:HH:MM:SS +hhmm"; 0 outside times._MIN_SEC.._MAX_SEC */
static int parse_clf(const unsigned char *t, Py_ssize_t n, ClfCache *cache, int64_t *out) {
    int64_t h, mi, sec, base;
    if (n != 26 || t[2] != '/' || t[6] != '/' || t[11] != ':' || t[14] != ':' || t[17] != ':' ||
        t[20] != ' ' || (t[21] != '+' && t[21] != '-'))
        return 0;
    if (!digits(t + 12, 2, &h) || !digits(t + 15, 2, &mi) || !digits(t + 18, 2, &sec)) return 0;
    if (cache->valid && memcmp(cache->day, t, 11) == 0 && memcmp(cache->zone, t + 21, 5) == 0) {
        base = cache->base;
    } else {
        if (!clf_base(t, &base)) return 0;
        memcpy(cache->day, t, 11);
        memcpy(cache->zone, t + 21, 5);
        cache->base = base;
        cache->valid = 1;
    }
    int64_t secs = base + h * 3600 + mi * 60 + sec;
    if (secs < -9223372036LL || secs > 9223372035LL) return 0;
    *out = secs * 1000000000LL;
    return 1;
}

/* grammar.TOKEN: [A-Za-z0-9!#$%&'*+.^_`|~-] */
static unsigned char TOKEN[256];

/* "HTTP/[0-9]+\.[0-9]+" in full */
static int is_protocol(const unsigned char *t, Py_ssize_t n) {
    if (n < 8 || memcmp(t, "HTTP/", 5) != 0) return 0;
    Py_ssize_t i = 5, a = 0, b = 0;
    while (i < n && t[i] >= '0' && t[i] <= '9') i++, a++;
    if (a == 0 || i >= n || t[i] != '.') return 0;
    for (i++; i < n && t[i] >= '0' && t[i] <= '9'; i++) b++;
    return b > 0 && i == n;
}

/* derive.split_request: offsets (relative to t) of method [0, m_end), uri [u_start, u_end) and
   protocol [p_start, n) (p_start = -1: none); 0 when the line has no method. */
static int split_request(const unsigned char *t, Py_ssize_t n, Py_ssize_t *m_end, Py_ssize_t *u_start,
                         Py_ssize_t *u_end, Py_ssize_t *p_start) {
    const unsigned char *sp = memchr(t, ' ', (size_t)n);
    if (sp == NULL || sp == t) return 0;
    for (const unsigned char *c = t; c < sp; c++)
        if (!TOKEN[*c]) return 0;
    *m_end = sp - t;
    *u_start = *m_end + 1;
    Py_ssize_t last = n - 1;
    while (last >= *u_start && t[last] != ' ') last--;
    if (last >= *u_start && is_protocol(t + last + 1, n - last - 1)) {
        *u_end = last;
        *p_start = last + 1;
    } else {
        *u_end = n;
        *p_start = -1;
    }
    return 1;
}

/* What one scanned column produces: its values, and the columns of its conversion (if any). */
typedef struct {
    int conv;
    int emit_values; /* what the caller wants back: the values, */
    int emit_conv;   /* and a bit per conversion column (checked anyway when it can decline) */
    Strings values;
    int64_t *ints;     /* CONV_INT, CONV_CLF */
    ClfCache clf;      /* CONV_CLF */
    Strings parts[3];  /* CONV_REQUEST: method, URI, protocol */
} Out;

typedef struct {
    Out *out;       /* per column */
    int64_t *rows;  /* row number of every matched line */
    int64_t matched;
    Ints declined;  /* (row, start, end) of every declined line */
    int64_t n_lines;
} Result;

/* The request split of value t[0:n] of matched line `m`, into the parts asked for. */
static void split_into(Out *o, const unsigned char *t, Py_ssize_t n, int64_t m) {
    Py_ssize_t bounds[3][2] = {{0, 0}, {0, 0}, {-1, -1}}; /* method, URI, protocol; -1: none */
    if (split_request(t, n, &bounds[0][1], &bounds[1][0], &bounds[1][1], &bounds[2][0])) {
        bounds[2][1] = bounds[2][0] >= 0 ? n : -1;
    } else {
        bounds[0][0] = bounds[0][1] = bounds[1][0] = bounds[1][1] = bounds[2][0] = -1;
    }
    for (int k = 0; k < 3; k++) {
        if (!(o->emit_conv & (1 << k))) continue;
        if (bounds[k][0] < 0)
            put_null(&o->parts[k], m);
        else
            put_string(&o->parts[k], m, t + bounds[k][0], bounds[k][1] - bounds[k][0]);
    }
}

/* Scan all lines of data[0:len]; 0 on success, -1 when out of memory (no GIL held: no exception). */
static int scan_lines(const unsigned char *data, Py_ssize_t len, const Step *steps, Py_ssize_t n_steps,
                      Py_ssize_t n_columns, Result *r, Py_ssize_t *starts, Py_ssize_t *ends, int64_t *numbers) {
    Py_ssize_t start = 0;
    int64_t row = 0;
    while (start < len) {
        const unsigned char *nl = memchr(data + start, '\n', (size_t)(len - start));
        Py_ssize_t end = nl != NULL ? nl - data : len;
        int ok = match_line(data + start, end - start, steps, n_steps, starts, ends);
        /* a value its conversion does not take declines the line: the regex path decides */
        for (Py_ssize_t c = 0; ok && c < n_columns; c++) {
            const Out *o = &r->out[c];
            const unsigned char *value = data + start + starts[c];
            Py_ssize_t n = ends[c] - starts[c];
            if (o->conv == CONV_INT) ok = parse_int(value, n, &numbers[c]);
            else if (o->conv == CONV_CLF) ok = parse_clf(value, n, &r->out[c].clf, &numbers[c]);
        }
        if (ok) {
            int64_t m = r->matched++;
            r->rows[m] = row;
            for (Py_ssize_t c = 0; c < n_columns; c++) {
                Out *o = &r->out[c];
                const unsigned char *value = data + start + starts[c];
                Py_ssize_t n = ends[c] - starts[c];
                if (o->emit_values) put_string(&o->values, m, value, n);
                if (!o->emit_conv) continue;
                if (o->conv == CONV_REQUEST) split_into(o, value, n, m);
                else if (o->conv != CONV_NONE) o->ints[m] = numbers[c];
            }
        } else if (ints_push(&r->declined, row) < 0 || ints_push(&r->declined, start) < 0 ||
                   ints_push(&r->declined, end) < 0) {
            return -1;
        }
        row++;
        start = end + 1;
    }
    r->n_lines = row;
    return 0;
}

/* Allocate what column `o` returns for `rows` rows of a chunk of `len` bytes; -1: out of memory. */
static int out_alloc(Out *o, size_t rows, size_t len) {
    if (o->emit_values && strings_alloc(&o->values, rows, len, 0) < 0) return -1;
    if (!o->emit_conv) return 0;
    if ((o->conv == CONV_INT || o->conv == CONV_CLF) && (o->ints = buffer_alloc(rows * sizeof *o->ints, 0)) == NULL)
        return -1;
    if (o->conv == CONV_REQUEST)
        for (int k = 0; k < 3; k++)
            if ((o->emit_conv & (1 << k)) && strings_alloc(&o->parts[k], rows, len, 1) < 0) return -1;
    return 0;
}

static void out_free(Out *o) {
    strings_free(&o->values);
    buffer_free(o->ints);
    for (int k = 0; k < 3; k++) strings_free(&o->parts[k]);
}

/* (values pair or None, [conversion pairs]) of column `o`; its buffers become the arrays'. */
static PyObject *out_export(Out *o, int64_t matched) {
    PyObject *values = o->emit_values ? strings_export(&o->values, matched) : Py_NewRef(Py_None);
    if (values == NULL) return NULL;
    PyObject *extra = PyList_New(0);
    if (extra == NULL) {
        Py_DECREF(values);
        return NULL;
    }
    PyObject *pair = NULL;
    if (o->emit_conv && (o->conv == CONV_INT || o->conv == CONV_CLF)) {
        pair = int_export(matched, o->ints, NULL, 0);
        o->ints = NULL;
        if (pair == NULL || PyList_Append(extra, pair) < 0) goto fail;
        Py_CLEAR(pair);
    } else if (o->emit_conv && o->conv == CONV_REQUEST) {
        for (int k = 0; k < 3; k++) {
            if (!(o->emit_conv & (1 << k))) continue;
            pair = strings_export(&o->parts[k], matched);
            if (pair == NULL || PyList_Append(extra, pair) < 0) goto fail;
            Py_CLEAR(pair);
        }
    }
    PyObject *both = PyTuple_Pack(2, values, extra);
    Py_DECREF(values);
    Py_DECREF(extra);
    return both;
fail:
    Py_XDECREF(pair);
    Py_DECREF(values);
    Py_DECREF(extra);
    return NULL;
}

/* Lines in data[0:len]: the newlines, plus a last line without one. */
static int64_t count_lines(const unsigned char *data, Py_ssize_t len) {
    int64_t n = 0;
    Py_ssize_t i = 0;
#ifdef __SSE2__
    /* per byte lane, count down by one per newline (cmpeq gives -1), at most 255 blocks at a time */
    const __m128i newline = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
    while (i + 16 <= len) {
        __m128i lanes = zero;
        for (int k = 0; k < 255 && i + 16 <= len; k++, i += 16)
            lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(data + i)), newline));
        __m128i sums = _mm_sad_epu8(lanes, zero);
        n += _mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums));
    }
#endif
    for (; i < len; i++) n += data[i] == '\n';
    return n + (len > 0 && data[len - 1] != '\n');
}

PyDoc_STRVAR(scan_doc,
             "scan(data, program, n_columns, emit=None) -> (columns, rows, declined, n_lines)\n\n"
             "Run `program` over every line of `data` (lines end at b'\\n'; no trailing empty line;\n"
             "data under 2 GiB). columns: per column, (values, conversions) for the matched lines:\n"
             "an Arrow string-view (schema, array) capsule pair (None when not emitted) and a list of\n"
             "the pairs its conversion gives (int, clf: one int64; request: method, URI, protocol).\n"
             "emit: one byte per column, bit 0 its values, bits 1-3 its conversion's columns\n"
             "(int, clf: bit 1; request: method, URI, protocol) (default: all).\n"
             "rows: an Arrow int64 pair, the row number of each matched line; declined: a list of\n"
             "(row, start, end) byte ranges of the lines handed back; n_lines: lines in data.");

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer buf;
    PyObject *ops;
    Py_ssize_t n_columns;
    const char *emit = NULL;
    Py_ssize_t emit_len = 0;
    if (!PyArg_ParseTuple(args, "y*On|y#", &buf, &ops, &n_columns, &emit, &emit_len)) return NULL;
    int64_t *numbers = NULL;
    Step *steps = NULL;
    Py_ssize_t n_steps = 0, *starts = NULL, *ends = NULL;
    Result r = {0};
    PyObject *result = NULL, *columns = NULL, *declined = NULL, *rows = NULL;
    if (buf.len > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "scan: data of 2 GiB or more");
        goto done;
    }
    if (n_columns < 0 || parse_program(ops, &steps, &n_steps, n_columns) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad column count");
        goto done;
    }
    int64_t n_lines = count_lines(buf.buf, buf.len);
    size_t slots = n_lines ? (size_t)n_lines : 1, width = n_columns ? (size_t)n_columns : 1;
    starts = calloc(width, sizeof *starts);
    ends = calloc(width, sizeof *ends);
    r.out = calloc(width, sizeof *r.out);
    r.rows = buffer_alloc(slots * sizeof *r.rows, 0);
    numbers = calloc(width, sizeof *numbers);
    if (starts == NULL || ends == NULL || r.out == NULL || r.rows == NULL || numbers == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (emit != NULL && emit_len != n_columns) {
        PyErr_SetString(PyExc_ValueError, "scan: one emit flag per column");
        goto done;
    }
    Py_ssize_t runs = 0;
    for (Py_ssize_t s = 0; s < n_steps; s++) {
        const Step *step = &steps[s];
        if (!step->is_run) continue;
        Out *o = &r.out[step->column];
        o->conv = step->conv;
        o->emit_values = emit == NULL || (emit[step->column] & 1);
        o->emit_conv = emit == NULL ? 7 : (emit[step->column] >> 1) & 7;
        if (out_alloc(o, slots, (size_t)buf.len) < 0) {
            PyErr_NoMemory();
            goto done;
        }
        runs++;
    }
    if (runs != n_columns) {
        PyErr_SetString(PyExc_ValueError, "scan: one run step per column");
        goto done;
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = scan_lines(buf.buf, buf.len, steps, n_steps, n_columns, &r, starts, ends, numbers);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    columns = PyList_New(n_columns);
    if (columns == NULL) goto done;
    for (Py_ssize_t c = 0; c < n_columns; c++) {
        PyObject *pair = out_export(&r.out[c], r.matched);
        if (pair == NULL) goto done;
        PyList_SET_ITEM(columns, c, pair);
    }
    rows = int_export(r.matched, r.rows, NULL, 0);
    r.rows = NULL;
    if (rows == NULL) goto done;
    declined = PyList_New((Py_ssize_t)(r.declined.len / 3));
    if (declined == NULL) goto done;
    for (size_t i = 0; i < r.declined.len / 3; i++) {
        const int64_t *d = r.declined.data + 3 * i;
        PyObject *t = Py_BuildValue("(LLL)", (long long)d[0], (long long)d[1], (long long)d[2]);
        if (t == NULL) goto done;
        PyList_SET_ITEM(declined, (Py_ssize_t)i, t);
    }
    result = Py_BuildValue("(OOOL)", columns, rows, declined, (long long)r.n_lines);
done:
    Py_XDECREF(columns);
    Py_XDECREF(rows);
    Py_XDECREF(declined);
    if (r.out != NULL)
        for (Py_ssize_t c = 0; c < n_columns; c++) out_free(&r.out[c]);
    free(r.out);
    buffer_free(r.rows);
    free(r.declined.data);
    free(steps);
    free(starts);
    free(ends);
    free(numbers);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_linescan", "Cut log lines into Arrow capture columns (see parsers/linescan.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__linescan(void) {
    init_decline_table();
    set_alnum_and(TOKEN, "!#$%&'*+.^_`|~-");
    set_alnum_and(HOSTNAME, "._~!$&'()*+,;=-");
    return PyModule_Create(&module);
}
