/* cpu_math.h — the polynomial constants of the CPU kernels' exp, erf and erfc, shared by the portable C level
 * (cpu_simd.c) and the vector levels (cpu_kern_body.h), so every level computes the same approximations.
 *
 * exp: e^x = 2^n · e^r, n = round(x / ln 2), r = x - n ln2 in [-ln2/2, ln2/2] (ln 2 split so n·LN2_HI is exact);
 * e^r by a degree-6 least-squares fit (relative error 2.6e-9 before float rounding).
 * erf(u) = u · P(u²) for |u| < ERF_T (degree 5 in u², abs error 8e-9);
 * erfc(u) = exp(-u²) · R(t), t = 1 / (1 + u/2) for u >= ERF_T (R fits erfcx on [ERF_T, 10], rel error 2.4e-9).
 * The coefficients were fitted once by least squares on Chebyshev nodes. */
#ifndef KERNELS_CPU_MATH_H
#define KERNELS_CPU_MATH_H

#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.42860682030941723e-6f
#define EXP_LO (-104.0f) /* e^-104 is below the smallest float denormal */
#define EXP_HI 88.7f
static const float EXP_C[7] = {1.0f, 1.000000037735531f, 0.5000000107769619f, 0.16666415441350427f, 0.04166621821842437f,
                               0.00837513187807255f, 0.00139485845501401f};
#define ERF_T 0.875f
static const float ERF_P[6] = {1.1283791633204685f, -0.37612574571392549f, 0.11282670383433355f, -0.026798669381659420f,
                               0.0050423433944972338f, -0.00062542445806692485f};
static const float ERFC_R[10] = {4.1196795187889859e-06f, 0.28197020100801690f, 0.28374407207622693f, 0.23425951050824889f,
                                 0.23731447110174966f, -0.11208188832911571f, 0.41147847612957172f, -0.61473061225063008f,
                                 0.35255702127492650f, -0.074516575663178167f};
#define SQRT1_2 0.70710678118654752f
#define QUICK_GELU_K 1.702f

#endif
