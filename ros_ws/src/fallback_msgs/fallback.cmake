# Shared by the fallback message packages: build this package only when no installed copy exists.
#
# A real package installed in an underlay (/opt/ros/<distro>, /usr, or any prefix of
# CMAKE_PREFIX_PATH other than this workspace) wins: this package then generates nothing, so the
# installed messages are the ones found. -DLWPOSE_FALLBACK_MSGS=ON forces the fallback.
option(LWPOSE_FALLBACK_MSGS "build the fallback message packages even when installed ones exist" OFF)

function(lwpose_installed_copy out)
  set(prefixes $ENV{CMAKE_PREFIX_PATH})
  string(REPLACE ":" ";" prefixes "${prefixes}")
  list(APPEND prefixes /usr /opt/ros/noetic /opt/ros/melodic)
  foreach(prefix ${prefixes})
    get_filename_component(prefix "${prefix}" REALPATH)
    get_filename_component(devel "${CATKIN_DEVEL_PREFIX}" REALPATH)
    get_filename_component(install "${CMAKE_INSTALL_PREFIX}" REALPATH)
    if(NOT prefix STREQUAL devel AND NOT prefix STREQUAL install
       AND EXISTS "${prefix}/share/${PROJECT_NAME}/cmake/${PROJECT_NAME}Config.cmake")
      set(${out} "${prefix}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

macro(lwpose_fallback_or_return)
  lwpose_installed_copy(_installed)
  if(_installed AND NOT LWPOSE_FALLBACK_MSGS)
    message(STATUS "${PROJECT_NAME}: using the installed package in ${_installed}; fallback not built")
    return()
  endif()
endmacro()
