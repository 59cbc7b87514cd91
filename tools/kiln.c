/* kiln CLI: placeholder, being written. */
#include <stdio.h>
int main(void) { puts("kiln " KILN_VERSION); return 0; }
