// The machine's f32 FMA peak: 16 independent AVX-512 FMA chains per thread, one thread per core.
// Used in README's estimator benchmark to say how close the soft assignment's product is to what the
// cores can do at all. Run by hand:
//   gcc -O2 -mavx512f -include stdlib.h -o /tmp/fma_peak scripts/fma_peak.c -lpthread && /tmp/fma_peak 2
#include <immintrin.h>
#include <stdio.h>
#include <pthread.h>
#include <time.h>
#define IT 200000000L
static void* run(void* a){ __m512 a0=_mm512_set1_ps(0e-3f); __m512 a1=_mm512_set1_ps(1e-3f); __m512 a2=_mm512_set1_ps(2e-3f); __m512 a3=_mm512_set1_ps(3e-3f); __m512 a4=_mm512_set1_ps(4e-3f); __m512 a5=_mm512_set1_ps(5e-3f); __m512 a6=_mm512_set1_ps(6e-3f); __m512 a7=_mm512_set1_ps(7e-3f); __m512 a8=_mm512_set1_ps(8e-3f); __m512 a9=_mm512_set1_ps(9e-3f); __m512 a10=_mm512_set1_ps(10e-3f); __m512 a11=_mm512_set1_ps(11e-3f); __m512 a12=_mm512_set1_ps(12e-3f); __m512 a13=_mm512_set1_ps(13e-3f); __m512 a14=_mm512_set1_ps(14e-3f); __m512 a15=_mm512_set1_ps(15e-3f);
 __m512 x=_mm512_set1_ps(0.999999f), y=_mm512_set1_ps(1e-7f);
 for(long k=0;k<IT/16;k++){  a0=_mm512_fmadd_ps(a0,x,y);
 a1=_mm512_fmadd_ps(a1,x,y);
 a2=_mm512_fmadd_ps(a2,x,y);
 a3=_mm512_fmadd_ps(a3,x,y);
 a4=_mm512_fmadd_ps(a4,x,y);
 a5=_mm512_fmadd_ps(a5,x,y);
 a6=_mm512_fmadd_ps(a6,x,y);
 a7=_mm512_fmadd_ps(a7,x,y);
 a8=_mm512_fmadd_ps(a8,x,y);
 a9=_mm512_fmadd_ps(a9,x,y);
 a10=_mm512_fmadd_ps(a10,x,y);
 a11=_mm512_fmadd_ps(a11,x,y);
 a12=_mm512_fmadd_ps(a12,x,y);
 a13=_mm512_fmadd_ps(a13,x,y);
 a14=_mm512_fmadd_ps(a14,x,y);
 a15=_mm512_fmadd_ps(a15,x,y); }
 *(float*)a=_mm512_reduce_add_ps(a0)+_mm512_reduce_add_ps(a1)+_mm512_reduce_add_ps(a2)+_mm512_reduce_add_ps(a3)+_mm512_reduce_add_ps(a4)+_mm512_reduce_add_ps(a5)+_mm512_reduce_add_ps(a6)+_mm512_reduce_add_ps(a7)+_mm512_reduce_add_ps(a8)+_mm512_reduce_add_ps(a9)+_mm512_reduce_add_ps(a10)+_mm512_reduce_add_ps(a11)+_mm512_reduce_add_ps(a12)+_mm512_reduce_add_ps(a13)+_mm512_reduce_add_ps(a14)+_mm512_reduce_add_ps(a15); return 0;}
int main(int c,char**v){int T=atoi(v[1]); pthread_t t[8]; float r[8]; struct timespec a,b; clock_gettime(CLOCK_MONOTONIC,&a);
 for(int i=0;i<T;i++) pthread_create(&t[i],0,run,&r[i]); for(int i=0;i<T;i++) pthread_join(t[i],0);
 clock_gettime(CLOCK_MONOTONIC,&b); double s=(b.tv_sec-a.tv_sec)+(b.tv_nsec-a.tv_nsec)*1e-9;
 printf("%d threads: %.1f GFLOP/s (%.3f s) %f\n",T, (double)T*(IT/16)*16*16*2/s/1e9, s, r[0]);}
