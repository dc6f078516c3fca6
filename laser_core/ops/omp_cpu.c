/* Batch-OMP on the CPU, one signal after another: the steps of laser_core.ops.omp._omp_chunk
 * for a single signal, with its correlations (atoms floats) in the L1 cache and the Gram matrix
 * in L2 through all its steps. Built and loaded by laser_core/ops/omp_cpu.py, which documents
 * the arguments; the module docstring of laser_core/ops/omp.py describes the algorithm. */

#include <math.h>
#include <stdint.h>

#define LANES 64

/* max |values[a]| over count values, kept in LANES running maxima (four AVX-512 or eight AVX2
 * registers once vectorised) so that a max does not wait for the one before it. */
static float largest_magnitude(const float *values, int64_t count)
{
    float lanes[LANES] = {0.0f};
    int64_t a = 0;
    for (; a + LANES <= count; a += LANES)
        for (int64_t i = 0; i < LANES; i++) {
            float magnitude = fabsf(values[a + i]);
            lanes[i] = magnitude > lanes[i] ? magnitude : lanes[i];
        }
    for (; a < count; a++) {
        float magnitude = fabsf(values[a]);
        lanes[0] = magnitude > lanes[0] ? magnitude : lanes[0];
    }
    float largest = 0.0f;
    for (int64_t i = 0; i < LANES; i++) largest = lanes[i] > largest ? lanes[i] : largest;
    return largest;
}

void batch_omp_signals(int64_t count, int64_t atoms, int64_t sparsity, const float *gram,
                       const float *initial, const float *energies, float tolerance,
                       float negligible_correlation, float degenerate_pivot, int64_t *indices,
                       float *values, float *workspace, int64_t *chosen)
{
    float *score = workspace;                   /* (atoms,) alpha = alpha0 - G gamma */
    float *inverse = score + atoms;             /* (sparsity, sparsity): [:t, :t] = L^-T */
    float *negated_values = inverse + sparsity * sparsity; /* (sparsity,) -gamma */
    float *cross = negated_values + sparsity;   /* (sparsity,) G[atom, support] */
    float *row = cross + sparsity;              /* (sparsity,) L^-1 G[support, atom] */
    for (int64_t n = 0; n < count; n++) {
        const float *alpha0 = initial + n * atoms;
        float energy = energies[n];
        float floor = energy * negligible_correlation * negligible_correlation;
        int64_t used = 0;
        if (energy > (tolerance > 0.0f ? tolerance : 0.0f)) {
            for (int64_t slot = 0; slot < sparsity; slot++) {
                const float *source = alpha0; /* alpha = alpha0 - G gamma, two rows a pass */
                for (int64_t j = 0; j < slot; j += 2) {
                    const float *first = gram + chosen[j] * atoms;
                    float first_weight = negated_values[j];
                    if (j + 1 < slot) {
                        const float *second = gram + chosen[j + 1] * atoms;
                        float second_weight = negated_values[j + 1];
                        for (int64_t a = 0; a < atoms; a++)
                            score[a] = source[a] + first_weight * first[a]
                                       + second_weight * second[a];
                    } else {
                        for (int64_t a = 0; a < atoms; a++)
                            score[a] = source[a] + first_weight * first[a];
                    }
                    source = score;
                }
                float largest = largest_magnitude(source, atoms);
                int32_t atom = (int32_t)atoms; /* the first column that holds the largest |alpha| */
                for (int32_t a = 0; a < (int32_t)atoms; a++) {
                    int32_t candidate = fabsf(source[a]) == largest ? a : (int32_t)atoms;
                    atom = candidate < atom ? candidate : atom;
                }
                const float *gram_atom = gram + atom * atoms;
                float correlation = source[atom];
                float norm = gram_atom[atom];
                float pivot = norm; /* squared new Cholesky diagonal */
                int repeated = 0; /* a support atom's alpha is rounding noise: stop */
                for (int64_t j = 0; j < slot; j++) {
                    cross[j] = gram_atom[chosen[j]];
                    repeated |= chosen[j] == atom;
                }
                for (int64_t j = 0; j < slot; j++) {
                    float sum = 0.0f;
                    for (int64_t i = 0; i <= j; i++) sum += inverse[i * sparsity + j] * cross[i];
                    row[j] = sum;
                    pivot -= sum * sum;
                }
                if (repeated || !(correlation * correlation > floor) ||
                    !(pivot > degenerate_pivot * norm))
                    break;
                float scale = 1.0f / sqrtf(pivot);
                for (int64_t i = 0; i < slot; i++) {
                    float sum = 0.0f;
                    for (int64_t j = i; j < slot; j++) sum += inverse[i * sparsity + j] * row[j];
                    inverse[i * sparsity + slot] = -scale * sum;
                }
                inverse[slot * sparsity + slot] = scale;
                float projection = correlation * scale;
                chosen[slot] = atom;
                negated_values[slot] = 0.0f;
                for (int64_t i = 0; i <= slot; i++)
                    negated_values[i] -= inverse[i * sparsity + slot] * projection;
                energy -= projection * projection;
                used = slot + 1;
                if (tolerance >= 0.0f && !(energy > tolerance)) break;
            }
        }
        for (int64_t j = 0; j < sparsity; j++) {
            indices[n * sparsity + j] = j < used ? chosen[j] : 0;
            values[n * sparsity + j] = j < used ? -negated_values[j] : 0.0f;
        }
    }
}
