/* Bounded reading of dataset files: the caller reads the header, decides
 * how many bytes the file may hold, and the reader never takes in (or
 * allocates for) more than that, whatever a gzip stream would inflate to. */
#ifndef TIDE_DATA_IO_H
#define TIDE_DATA_IO_H

#include "internal.h"

typedef struct {
    void *f;          /* gzFile when gunzipping, FILE * otherwise */
    bool gz;          /* opened through zlib (plain files pass through) */
    const char *path; /* for messages */
    uint64_t size;    /* bytes on disk */
    uint8_t *p;       /* what has been read so far */
    size_t cap, len;
} td_reader;

/* open path; gunzip selects zlib's transparent reader (gzip or plain) */
td_status td_reader_open(td_reader *r, const char *path, bool gunzip);
/* read until len == upto or the data ends; the buffer grows with what
 * arrives, so a false promise in upto costs nothing */
td_status td_reader_fill(td_reader *r, size_t upto);
/* the most bytes the file can yield: its size if plain, the deflate
 * ratio bound if gzip */
uint64_t td_reader_most(const td_reader *r);
/* close; the buffer is freed unless the caller took it (set r->p = NULL) */
void td_reader_close(td_reader *r);

#endif
