/* test_ini.c: the INI reader.  Good text keeps every section, key and line
 * number; each syntax mistake is written to a file, loaded, and must fail with
 * DC_ERR_CONFIG and exactly the "FILE:LINE: reason" message a user would see. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "dc/ini.h"

/* Load text from a file; expect status and the message "PATH:<rest>". */
static void expect_error(const char *text, enum dc_status want, const char *rest)
{
    char path[512], msg[1024];
    write_tmp_file("test_ini_bad.ini", text, path, sizeof path);
    struct dc_ini ini;
    enum dc_status st = dc_ini_load(path, &ini);
    snprintf(msg, sizeof msg, "%s%s", path, rest);
    if (st != want || strcmp(dc_error_msg(), msg) != 0) {
        fprintf(stderr, "text:\n%s\nwant %s \"%s\"\ngot  %s \"%s\"\n", text, dc_status_str(want), msg,
                dc_status_str(st), dc_error_msg());
        dc_test_failures++;
    }
    if (st == DC_OK)
        dc_ini_free(&ini);
}

static void test_good(void)
{
    const char *text = "\xEF\xBB\xBF# leading comment\n"
                       "; another\n"
                       "\n"
                       "[data]   # trailing comment\n"
                       "set = mnist\n"
                       "  dir=data/run#2   ; a '#' inside a word stays\n"
                       "[conv]\r\n"
                       "filters = 20\r\n"
                       "empty =\n"
                       "[conv]\n"
                       "\tfilters\t=\t50 # fifty\n";
    char path[512];
    write_tmp_file("test_ini_good.ini", text, path, sizeof path);
    struct dc_ini ini;
    CHECK_OK(dc_ini_load(path, &ini));
    CHECK(strcmp(ini.origin, path) == 0);
    CHECK(ini.nsections == 3);
    if (ini.nsections != 3)
        return;
    struct dc_ini_section *s = ini.sections;
    CHECK(strcmp(s[0].name, "data") == 0 && s[0].line == 4 && s[0].nentries == 2);
    const struct dc_ini_entry *e = dc_ini_find(&s[0], "dir");
    CHECK(e && strcmp(e->value, "data/run#2") == 0 && e->line == 6 && e->source == NULL);
    e = dc_ini_find(&s[0], "set");
    CHECK(e && strcmp(e->value, "mnist") == 0 && e->line == 5);
    CHECK(strcmp(s[1].name, "conv") == 0 && s[1].line == 7);
    e = dc_ini_find(&s[1], "filters");
    CHECK(e && strcmp(e->value, "20") == 0 && e->line == 8);
    e = dc_ini_find(&s[1], "empty");
    CHECK(e && strcmp(e->value, "") == 0);
    e = dc_ini_find(&s[2], "filters");
    CHECK(strcmp(s[2].name, "conv") == 0 && s[2].line == 10 && e && strcmp(e->value, "50") == 0);
    CHECK(dc_ini_find(&s[2], "nothing") == NULL);

    /* overrides: replace a value, add a key, add a section */
    CHECK_OK(dc_ini_set(&s[1], "filters", "32", 0, "conv1.filters=32"));
    e = dc_ini_find(&s[1], "filters");
    CHECK(e && strcmp(e->value, "32") == 0 && e->line == 0 && strcmp(e->source, "conv1.filters=32") == 0);
    CHECK(s[1].nentries == 2);
    CHECK_OK(dc_ini_set(&s[1], "size", "5", 0, NULL));
    CHECK(s[1].nentries == 3);
    int idx = -1;
    CHECK_OK(dc_ini_add_section(&ini, "train", 0, "train.lr=1", &idx));
    CHECK(idx == 3 && ini.nsections == 4 && strcmp(ini.sections[3].source, "train.lr=1") == 0);
    dc_ini_free(&ini);
    CHECK(ini.nsections == 0 && ini.sections == NULL);

    /* parse from memory, no final newline */
    CHECK_OK(dc_ini_parse("[fc]\noutputs = 10", "mem", &ini));
    CHECK(ini.nsections == 1 && ini.sections[0].nentries == 1);
    dc_ini_free(&ini);
}

static void test_errors(void)
{
    expect_error("[data]\nset = mnist\nbatch 64\n", DC_ERR_CONFIG,
                 ":3: line 'batch 64' has no '=': write key = value (comments start with # or ;)");
    expect_error("# c\n[data\nset = mnist\n", DC_ERR_CONFIG,
                 ":2: unterminated '[': a section header reads [name]");
    expect_error("[data]\n = mnist\n", DC_ERR_CONFIG, ":2: empty key before '='");
    expect_error("[data]\nset = mnist\n\nset = cifar10\n", DC_ERR_CONFIG,
                 ":4: [data] set: given twice in one section (first at line 2); keep one");
    expect_error("lr = 0.1\n[train]\n", DC_ERR_CONFIG,
                 ":1: key 'lr' is outside any section; put a [section] header above it");
    expect_error("[train]\nlearning rate = 0.1\n", DC_ERR_CONFIG,
                 ":2: bad key 'learning rate': use letters, digits and '_'");
    expect_error("[train] lr = 0.1\n", DC_ERR_CONFIG,
                 ":1: text 'lr = 0.1' after the section header; put it on its own line");
    expect_error("[]\n", DC_ERR_CONFIG, ":1: empty section name '[]'");
    expect_error("[con v]\n", DC_ERR_CONFIG, ":1: bad section name '[con v]': use letters, digits and '_'");
}

static void test_io(void)
{
    char path[512], msg[1024];
    test_tmp_path("test_ini_does_not_exist.ini", path, sizeof path);
    remove(path);
    struct dc_ini ini;
    CHECK(dc_ini_load(path, &ini) == DC_ERR_IO);
    snprintf(msg, sizeof msg, "cannot open config %s: %s", path, strerror(ENOENT));
    CHECK(strcmp(dc_error_msg(), msg) == 0);
    if (strcmp(dc_error_msg(), msg) != 0)
        fprintf(stderr, "want \"%s\"\ngot  \"%s\"\n", msg, dc_error_msg());

    /* a file with a NUL byte is not a config */
    test_tmp_path("test_ini_nul.ini", path, sizeof path);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fwrite("[a]\nx = 1\0y\n", 1, 12, f);
    fclose(f);
    CHECK(dc_ini_load(path, &ini) == DC_ERR_CONFIG);
    snprintf(msg, sizeof msg, "%s: contains a NUL byte; is it really a config file?", path);
    CHECK(strcmp(dc_error_msg(), msg) == 0);
}

/* Tools print dc_status_str: a status added without a name would print "unknown status". */
static void test_status_names(void)
{
    for (int i = 0; i < DC_STATUS_COUNT; i++) {
        const char *name = dc_status_str((enum dc_status)i);
        CHECK(strcmp(name, "unknown status") != 0);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(name, dc_status_str((enum dc_status)j)) != 0);
    }
    CHECK(strcmp(dc_status_str(DC_STATUS_COUNT), "unknown status") == 0);
}

int main(void)
{
    test_status_names();
    test_good();
    test_errors();
    test_io();
    return test_finish("test_ini");
}
