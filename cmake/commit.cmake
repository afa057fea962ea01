# commit.cmake — writes OUT, a header naming the commit dlc is built from:
#
#   cmake -DSRC=<source dir> -DOUT=<build dir>/commit.h -P commit.cmake
#
# Run at every build (CMakeLists.txt's dlc_commit target), so that
# `dlc --version` never names a commit the binary is not built from; the
# header is rewritten only when the name changes, so only main.c is
# recompiled, and only after a commit or a change to the tree.
#
# The name is `git describe --always --dirty --exclude=*`: the short hash,
# with "-dirty" when the tracked files differ from it. Without git (a
# pristine machine that had the clone carried in: scripts/fresh-machine.sh)
# the hash is read from .git itself (without "-dirty": that takes git); outside a git
# checkout (a source tarball) it is "unknown".
set(commit "")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND "${GIT_EXECUTABLE}" describe --always --dirty --abbrev=7 --exclude=*
                  WORKING_DIRECTORY "${SRC}" OUTPUT_VARIABLE commit
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    set(commit "")
  endif()
endif()
if(commit STREQUAL "" AND EXISTS "${SRC}/.git")
  # .git is the repository, or (a worktree) a file naming it.
  set(gitdir "${SRC}/.git")
  if(NOT IS_DIRECTORY "${gitdir}")
    file(STRINGS "${gitdir}" line LIMIT_COUNT 1 REGEX "^gitdir: ")
    string(REGEX REPLACE "^gitdir: " "" gitdir "${line}")
  endif()
  set(head "")
  if(EXISTS "${gitdir}/HEAD")
    file(STRINGS "${gitdir}/HEAD" head LIMIT_COUNT 1)
  endif()
  if(head MATCHES "^ref: (.*)$")
    set(ref "${CMAKE_MATCH_1}")
    set(head "")
    # A worktree's branches live in the common directory.
    set(common "${gitdir}")
    if(EXISTS "${gitdir}/commondir")
      file(STRINGS "${gitdir}/commondir" c LIMIT_COUNT 1)
      get_filename_component(common "${c}" ABSOLUTE BASE_DIR "${gitdir}")
    endif()
    foreach(dir "${gitdir}" "${common}")
      if(head STREQUAL "" AND EXISTS "${dir}/${ref}")
        file(STRINGS "${dir}/${ref}" head LIMIT_COUNT 1)
      endif()
    endforeach()
    if(head STREQUAL "" AND EXISTS "${common}/packed-refs")
      file(STRINGS "${common}/packed-refs" packed REGEX " ${ref}$")
      string(REGEX REPLACE " .*" "" head "${packed}")
    endif()
  endif()
  if(head MATCHES "^[0-9a-f]+$")
    string(SUBSTRING "${head}" 0 7 commit)
  endif()
endif()
if(commit STREQUAL "")
  set(commit "unknown")
endif()
set(text "/* Written by cmake/commit.cmake at build time. */\n#define DLC_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
